//! The host side of the waPC protocol, shared by every wasm backend.
//!
//! A call goes: the host stores the operation name and payload in
//! [`WapcHost`] and calls the guest's `__guest_call(op_len, payload_len)`;
//! the guest allocates two buffers and calls `__guest_request(op_ptr, ptr)`,
//! which copies them in; it then reports `__guest_response(ptr, len)` or
//! `__guest_error(ptr, len)` and returns 1 or 0. Every pointer the guest
//! hands over is bounds-checked against its linear memory: a bad one is a
//! [`Fault`], which each backend turns into a trap.
//!
//! Verify modules need no host capabilities, so `__host_call` answers every
//! request with an error the guest can read through `__host_error`.

use crate::CallError;

/// The wasm import module name of the waPC host functions.
pub const IMPORT_MODULE: &str = "wapc";

/// Host functions a waPC guest may import, all from [`IMPORT_MODULE`].
pub const HOST_FUNCTIONS: &[&str] = &[
    "__guest_request",
    "__guest_response",
    "__guest_error",
    "__host_call",
    "__host_response",
    "__host_response_len",
    "__host_error",
    "__host_error_len",
    "__console_log",
];

/// The export every waPC guest must have.
pub const GUEST_CALL: &str = "__guest_call";
/// Init exports, called once after instantiation if present.
pub const INIT_FUNCTIONS: &[&str] = &["wapc_init", "_start"];

/// Longest guest-supplied name quoted in a host error.
const MAX_NAME: usize = 256;

/// A guest that broke the host's rules during a host call; each backend
/// turns it into a trap.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Fault {
    /// A pointer or length outside the guest's linear memory.
    #[error(
        "guest passed an out-of-bounds region: {len} bytes at {ptr:#x} (memory is {memory} bytes)"
    )]
    OutOfBounds {
        /// Where the region starts.
        ptr: u32,
        /// Its length.
        len: u32,
        /// The memory's size.
        memory: usize,
    },
    /// A response or error message over the host's bound.
    #[error("guest handed back {len} bytes as its {what}, over the limit of {limit} bytes")]
    TooLarge {
        /// `response` or `error message`.
        what: &'static str,
        /// Its length.
        len: u32,
        /// The bound.
        limit: usize,
    },
}

/// The per-instance state of the waPC protocol.
#[derive(Debug)]
pub struct WapcHost {
    operation: Vec<u8>,
    payload: Vec<u8>,
    response: Option<Vec<u8>>,
    guest_error: Option<Vec<u8>>,
    host_error: Vec<u8>,
    max_response: usize,
}

impl Default for WapcHost {
    fn default() -> Self {
        WapcHost::new(crate::Limits::default().max_response_bytes)
    }
}

impl WapcHost {
    /// Protocol state for one instance whose responses and error messages
    /// may be at most `max_response` bytes.
    pub fn new(max_response: usize) -> WapcHost {
        WapcHost {
            operation: Vec::new(),
            payload: Vec::new(),
            response: None,
            guest_error: None,
            host_error: Vec::new(),
            max_response,
        }
    }

    /// Prepares a call; returns the `(op_len, payload_len)` arguments of
    /// `__guest_call`.
    ///
    /// # Errors
    ///
    /// [`CallError::TooLarge`] when a length does not fit an `i32`.
    pub fn begin(&mut self, operation: &str, payload: &[u8]) -> Result<(i32, i32), CallError> {
        let op_len =
            i32::try_from(operation.len()).map_err(|_| CallError::TooLarge(operation.len()))?;
        let payload_len =
            i32::try_from(payload.len()).map_err(|_| CallError::TooLarge(payload.len()))?;
        self.operation.clear();
        self.operation.extend_from_slice(operation.as_bytes());
        self.payload.clear();
        self.payload.extend_from_slice(payload);
        self.response = None;
        self.guest_error = None;
        self.host_error.clear();
        Ok((op_len, payload_len))
    }

    /// Turns the return code of `__guest_call` into the call's outcome.
    ///
    /// # Errors
    ///
    /// [`CallError::Guest`] for a guest-reported error,
    /// [`CallError::Protocol`] when the guest did not report what its
    /// return code claims.
    pub fn finish(&mut self, code: i32) -> Result<Vec<u8>, CallError> {
        self.payload.clear();
        match (code, self.response.take(), self.guest_error.take()) {
            (1, Some(response), _) => Ok(response),
            (1, None, _) => Err(CallError::Protocol(
                "__guest_call returned success without calling __guest_response".into(),
            )),
            (_, _, Some(error)) => Err(CallError::Guest(
                String::from_utf8_lossy(&error).into_owned(),
            )),
            (code, _, None) => Err(CallError::Protocol(format!(
                "__guest_call returned {code} without calling __guest_error"
            ))),
        }
    }

    /// `__guest_request(op_ptr, ptr)`: copies the operation and payload
    /// into the guest's buffers.
    ///
    /// # Errors
    ///
    /// [`Fault`] when a buffer lies outside memory.
    pub fn guest_request(&self, memory: &mut [u8], op_ptr: i32, ptr: i32) -> Result<(), Fault> {
        write(memory, op_ptr, &self.operation)?;
        write(memory, ptr, &self.payload)
    }

    /// `__guest_response(ptr, len)`: takes the guest's response.
    ///
    /// # Errors
    ///
    /// [`Fault`] when the region lies outside memory.
    pub fn guest_response(&mut self, memory: &[u8], ptr: i32, len: i32) -> Result<(), Fault> {
        self.bounded("response", len)?;
        self.response = Some(read(memory, ptr, len)?.to_vec());
        Ok(())
    }

    /// Refuses a response or message longer than the bound before it is
    /// copied out of the guest.
    fn bounded(&self, what: &'static str, len: i32) -> Result<(), Fault> {
        let len = len as u32;
        if len as usize > self.max_response {
            return Err(Fault::TooLarge {
                what,
                len,
                limit: self.max_response,
            });
        }
        Ok(())
    }

    /// `__guest_error(ptr, len)`: takes the guest's error message.
    ///
    /// # Errors
    ///
    /// [`Fault`] when the region lies outside memory.
    pub fn guest_error(&mut self, memory: &[u8], ptr: i32, len: i32) -> Result<(), Fault> {
        self.bounded("error message", len)?;
        self.guest_error = Some(read(memory, ptr, len)?.to_vec());
        Ok(())
    }

    /// `__host_call(...)`: verify modules get no host capabilities; every
    /// call fails with a message readable through `__host_error`.
    ///
    /// # Errors
    ///
    /// [`Fault`] when a name region lies outside memory.
    #[allow(clippy::too_many_arguments)]
    pub fn host_call(
        &mut self,
        memory: &[u8],
        binding: (i32, i32),
        namespace: (i32, i32),
        operation: (i32, i32),
        _payload: (i32, i32),
    ) -> Result<i32, Fault> {
        // Names are guest data: keep the message small whatever they claim.
        let name = |(ptr, len)| {
            read(memory, ptr, len).map(|bytes| {
                String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_NAME)]).into_owned()
            })
        };
        self.host_error = format!(
            "host call {}/{}/{} refused: this host offers no capabilities to guests",
            name(binding)?,
            name(namespace)?,
            name(operation)?
        )
        .into_bytes();
        Ok(0)
    }

    /// `__host_response_len()`: there is never a host response.
    pub fn host_response_len(&self) -> i32 {
        0
    }

    /// `__host_error_len()`.
    pub fn host_error_len(&self) -> i32 {
        // Bounded: `host_call` truncates every name to `MAX_NAME` bytes.
        i32::try_from(self.host_error.len()).unwrap_or(i32::MAX)
    }

    /// `__host_error(ptr)`: copies the last host error into the guest.
    ///
    /// # Errors
    ///
    /// [`Fault`] when the buffer lies outside memory.
    pub fn host_error(&self, memory: &mut [u8], ptr: i32) -> Result<(), Fault> {
        write(memory, ptr, &self.host_error)
    }

    /// `__console_log(ptr, len)`: the guest's log line, as a tracing event.
    ///
    /// # Errors
    ///
    /// [`Fault`] when the region lies outside memory.
    pub fn console_log(&self, memory: &[u8], ptr: i32, len: i32) -> Result<(), Fault> {
        self.bounded("log line", len)?;
        let line = read(memory, ptr, len)?;
        tracing::debug!(target: "hotwasm::guest", "{}", String::from_utf8_lossy(line));
        Ok(())
    }
}

/// The region `[ptr, ptr + len)` of `memory`, with wasm32's unsigned
/// pointer semantics.
fn region(memory_len: usize, ptr: i32, len: usize) -> Result<std::ops::Range<usize>, Fault> {
    let start = ptr as u32 as usize;
    let fault = || Fault::OutOfBounds {
        ptr: ptr as u32,
        len: u32::try_from(len).unwrap_or(u32::MAX),
        memory: memory_len,
    };
    let end = start.checked_add(len).ok_or_else(fault)?;
    if end > memory_len {
        return Err(fault());
    }
    Ok(start..end)
}

fn read(memory: &[u8], ptr: i32, len: i32) -> Result<&[u8], Fault> {
    let range = region(memory.len(), ptr, len as u32 as usize)?;
    Ok(&memory[range])
}

fn write(memory: &mut [u8], ptr: i32, bytes: &[u8]) -> Result<(), Fault> {
    let range = region(memory.len(), ptr, bytes.len())?;
    memory[range].copy_from_slice(bytes);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_and_response_round_trip_through_memory() {
        let mut host = WapcHost::default();
        let mut memory = vec![0u8; 64];
        assert_eq!(host.begin("verify", b"abc"), Ok((6, 3)));
        host.guest_request(&mut memory, 0, 10).expect("in bounds");
        assert_eq!(&memory[..6], b"verify");
        assert_eq!(&memory[10..13], b"abc");
        host.guest_response(&memory, 10, 3).expect("in bounds");
        assert_eq!(host.finish(1), Ok(b"abc".to_vec()));
    }

    #[test]
    fn out_of_bounds_pointers_fault_instead_of_panicking() {
        let mut host = WapcHost::default();
        let mut memory = vec![0u8; 16];
        host.begin("verify", &[1; 8]).expect("small");
        assert!(host.guest_request(&mut memory, 0, 12).is_err());
        assert!(host.guest_request(&mut memory, -1, 0).is_err());
        assert!(host.guest_response(&memory, 8, 9).is_err());
        assert!(host.guest_response(&memory, i32::MAX, i32::MAX).is_err());
        assert!(host.guest_error(&memory, -4, -4).is_err());
    }

    #[test]
    fn responses_over_the_bound_fault_before_they_are_copied() {
        let mut host = WapcHost::new(4);
        let memory = vec![0u8; 16];
        host.begin("verify", b"").expect("small");
        host.guest_response(&memory, 0, 4).expect("at the bound");
        let fault = host
            .guest_response(&memory, 0, 5)
            .expect_err("over the bound");
        assert!(
            matches!(
                fault,
                Fault::TooLarge {
                    len: 5,
                    limit: 4,
                    ..
                }
            ),
            "{fault}"
        );
        // Checked before the bounds: a huge claimed length costs nothing.
        assert!(matches!(
            host.guest_error(&memory, 0, i32::MAX),
            Err(Fault::TooLarge { .. })
        ));
    }

    #[test]
    fn success_without_response_is_a_protocol_error() {
        let mut host = WapcHost::default();
        host.begin("verify", b"").expect("small");
        assert!(matches!(host.finish(1), Err(CallError::Protocol(_))));
        host.begin("verify", b"").expect("small");
        assert!(matches!(host.finish(0), Err(CallError::Protocol(_))));
    }

    #[test]
    fn guest_error_is_reported_and_host_calls_are_refused() {
        let mut host = WapcHost::default();
        let mut memory = b"boom....bindnsop".to_vec();
        host.begin("verify", b"").expect("small");
        assert_eq!(
            host.host_call(&memory, (8, 4), (12, 2), (14, 2), (0, 0)),
            Ok(0)
        );
        let len = host.host_error_len();
        assert!(len > 0);
        let mut guest_buffer = vec![0u8; 256];
        host.host_error(&mut guest_buffer, 0).expect("fits");
        assert!(String::from_utf8_lossy(&guest_buffer).contains("bind/ns/op refused"));
        host.guest_error(&memory, 0, 4).expect("in bounds");
        assert_eq!(host.finish(0), Err(CallError::Guest("boom".into())));
        memory.clear();
    }
}
