//! The byte layout of a ring file and the checks applied to a header this
//! process did not write: geometry is recomputed from first principles and
//! must agree with both the header and the real file length.

/// First eight bytes of every ring file.
pub const MAGIC: [u8; 8] = *b"HWRING01";
/// Layout version stored after the magic; bumped on any incompatible change.
pub const LAYOUT_VERSION: u32 = 1;
/// Bytes before the first slot: the fixed fields and the two cursors, each
/// on its own cache line.
pub const HEADER_LEN: usize = 256;
/// Bytes at the start of each slot before its payload: `seq`, `len`, `crc32`.
pub const SLOT_HEADER_LEN: usize = 16;
/// Largest slot count a ring may have.
pub const MAX_SLOTS: u32 = 1 << 24;
/// Largest `max_record` a ring may have (16 MiB).
pub const MAX_RECORD_LIMIT: u32 = 1 << 24;
/// Largest ring file, header included (4 GiB).
pub const MAX_RING_BYTES: u64 = 1 << 32;

/// Slots are rounded up to whole cache lines so neighbours never share one.
const CACHE_LINE: u64 = 64;

/// Offsets of the fixed header fields (little-endian integers).
pub(crate) const OFF_VERSION: usize = 8;
pub(crate) const OFF_SLOTS: usize = 12;
pub(crate) const OFF_SLOT_SIZE: usize = 16;
pub(crate) const OFF_MAX_RECORD: usize = 20;
/// Length of the fixed part of the header (magic .. reserved), one cache line.
pub(crate) const FIXED_LEN: usize = 64;
/// Producer cursor (`AtomicU64`), alone on the second cache line.
pub(crate) const OFF_PRODUCER: usize = 64;
/// Consumer cursor (`AtomicU64`), alone on the third cache line.
pub(crate) const OFF_CONSUMER: usize = 128;

/// Offsets inside a slot.
pub(crate) const SLOT_SEQ: usize = 0;
pub(crate) const SLOT_LEN: usize = 8;
pub(crate) const SLOT_CRC: usize = 12;
pub(crate) const SLOT_PAYLOAD: usize = SLOT_HEADER_LEN;

/// The validated shape of a ring: everything offsets are computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    /// Number of slots; a power of two in `2..=MAX_SLOTS`.
    pub(crate) slots: u32,
    /// Bytes per slot: `SLOT_HEADER_LEN + max_record` rounded up to 64.
    pub(crate) slot_size: u32,
    /// Largest payload a slot carries.
    pub(crate) max_record: u32,
    /// Total file length: `HEADER_LEN + slots * slot_size`.
    pub(crate) file_len: usize,
}

/// Why `Ring::create` cannot lay out a ring of the asked shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GeometryError {
    /// The slot count is not a power of two in `2..=MAX_SLOTS`.
    #[error("slot count {slots} is not a power of two in 2..={MAX_SLOTS}")]
    SlotCount {
        /// The slot count asked for.
        slots: u32,
    },
    /// `max_record` is over [`MAX_RECORD_LIMIT`].
    #[error("max_record {max_record} exceeds the limit of {MAX_RECORD_LIMIT}")]
    RecordLimit {
        /// The record size asked for.
        max_record: u32,
    },
    /// The file would be over [`MAX_RING_BYTES`] (or this address space).
    #[error(
        "{slots} slots of {slot_size} bytes need {file_len} bytes, over the limit of {MAX_RING_BYTES}"
    )]
    TooLarge {
        /// The slot count asked for.
        slots: u32,
        /// Bytes per slot, header and padding included.
        slot_size: u64,
        /// The file length that shape needs.
        file_len: u64,
    },
}

impl Geometry {
    /// Lays out `slots` slots for records up to `max_record` bytes, or says
    /// why that is impossible.
    pub(crate) fn new(slots: u32, max_record: u32) -> Result<Geometry, GeometryError> {
        if !(2..=MAX_SLOTS).contains(&slots) || !slots.is_power_of_two() {
            return Err(GeometryError::SlotCount { slots });
        }
        if max_record > MAX_RECORD_LIMIT {
            return Err(GeometryError::RecordLimit { max_record });
        }
        let slot_size =
            (SLOT_HEADER_LEN as u64 + u64::from(max_record)).div_ceil(CACHE_LINE) * CACHE_LINE;
        let file_len = HEADER_LEN as u64 + u64::from(slots) * slot_size;
        let too_large = GeometryError::TooLarge {
            slots,
            slot_size,
            file_len,
        };
        if file_len > MAX_RING_BYTES {
            return Err(too_large);
        }
        Ok(Geometry {
            slots,
            // Both fit: max_record is at most 16 MiB and file_len at most
            // 4 GiB; only a 32-bit address space can refuse the latter.
            slot_size: u32::try_from(slot_size).map_err(|_| too_large.clone())?,
            max_record,
            file_len: usize::try_from(file_len).map_err(|_| too_large)?,
        })
    }

    /// The fixed first cache line of the header describing this geometry.
    pub(crate) fn encode_fixed(&self) -> [u8; FIXED_LEN] {
        let mut line = [0u8; FIXED_LEN];
        line[..MAGIC.len()].copy_from_slice(&MAGIC);
        put_u32(&mut line, OFF_VERSION, LAYOUT_VERSION);
        put_u32(&mut line, OFF_SLOTS, self.slots);
        put_u32(&mut line, OFF_SLOT_SIZE, self.slot_size);
        put_u32(&mut line, OFF_MAX_RECORD, self.max_record);
        line
    }

    /// Parses a header line copied out of a file of `file_len` bytes and
    /// checks it against itself and the file. Trusts nothing in `line`.
    pub(crate) fn decode_fixed(line: &[u8; FIXED_LEN], file_len: u64) -> Result<Geometry, String> {
        if line[..MAGIC.len()] != MAGIC {
            return Err("bad magic".to_owned());
        }
        let version = get_u32(line, OFF_VERSION);
        if version != LAYOUT_VERSION {
            return Err(format!(
                "layout version {version}, this build reads {LAYOUT_VERSION}"
            ));
        }
        let slots = get_u32(line, OFF_SLOTS);
        let slot_size = get_u32(line, OFF_SLOT_SIZE);
        let max_record = get_u32(line, OFF_MAX_RECORD);
        let geometry = Geometry::new(slots, max_record).map_err(|e| e.to_string())?;
        if geometry.slot_size != slot_size {
            return Err(format!(
                "slot size {slot_size} does not fit max_record {max_record} (expected {})",
                geometry.slot_size
            ));
        }
        if geometry.file_len as u64 != file_len {
            return Err(format!(
                "header implies {} bytes, the file holds {file_len}",
                geometry.file_len
            ));
        }
        Ok(geometry)
    }

    /// Index of the slot that ring position `pos` maps to.
    pub(crate) fn slot_index(&self, pos: u64) -> u32 {
        // `slots` is a power of two, so the mask keeps the index in range
        // whatever `pos` holds; truncation to u32 is exact.
        (pos & u64::from(self.slots - 1)) as u32
    }

    /// Byte offset of the slot that ring position `pos` maps to; always
    /// `slot_size` bytes before `file_len` or earlier, and 64-aligned.
    pub(crate) fn slot_offset(&self, pos: u64) -> usize {
        HEADER_LEN + self.slot_index(pos) as usize * self.slot_size as usize
    }
}

fn put_u32(line: &mut [u8; FIXED_LEN], offset: usize, value: u32) {
    line[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
}

fn get_u32(line: &[u8; FIXED_LEN], offset: usize) -> u32 {
    let mut bytes = [0u8; 4];
    bytes.copy_from_slice(&line[offset..offset + 4]);
    u32::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_cache_line_multiples() {
        for max_record in [0, 1, 47, 48, 49, 1000, MAX_RECORD_LIMIT] {
            let g = Geometry::new(2, max_record).expect("geometry");
            assert_eq!(g.slot_size % 64, 0);
            assert!(g.slot_size as usize >= SLOT_HEADER_LEN + max_record as usize);
        }
    }

    #[test]
    fn refuses_bad_slot_counts() {
        for slots in [0, 1, 3, 6, MAX_SLOTS + 1, u32::MAX] {
            assert!(Geometry::new(slots, 16).is_err(), "slots {slots}");
        }
    }

    #[test]
    fn refuses_huge_rings() {
        assert!(Geometry::new(MAX_SLOTS, MAX_RECORD_LIMIT).is_err());
    }

    #[test]
    fn header_round_trips() {
        let g = Geometry::new(8, 100).expect("geometry");
        let line = g.encode_fixed();
        assert_eq!(Geometry::decode_fixed(&line, g.file_len as u64), Ok(g));
        assert!(Geometry::decode_fixed(&line, g.file_len as u64 - 1).is_err());
    }

    #[test]
    fn slot_offsets_stay_in_bounds() {
        let g = Geometry::new(4, 10).expect("geometry");
        for pos in [0, 3, 4, u64::MAX] {
            assert!(g.slot_offset(pos) + g.slot_size as usize <= g.file_len);
            assert_eq!(g.slot_offset(pos) % 64, 0);
        }
    }
}
