//! Stream entries on the wire: ids, the raw `XREAD`/`XREADGROUP`/
//! `XAUTOCLAIM` replies, and the field layout of jobs and replies.
//!
//! A job entry has the fields `seq` (decimal), `reply`
//! ([`ReplyTo::to_field`]) and `job` (the JSON job line's bytes). A results
//! entry has one field, `reply`, holding [`Reply::encode`] — the same bytes
//! a shared-memory slot holds. Anything else in a stream is not an error of
//! the read: it comes back as an [`EntryError`] naming the entry.
//!
//! The entry lists are parsed here by hand, not with redis-rs's
//! `StreamReadReply`/`StreamAutoClaimReply`: those key fields by `String`
//! and refuse the whole reply for one non-UTF-8 field name, which would
//! stall the group (the batch is already pending, and every `XAUTOCLAIM`
//! of it would fail the same way) instead of dead-lettering one entry.

use std::fmt;

use redis::Value;

use super::take::{FIELD_LIMIT, FIELD_TOO_LARGE};
use crate::{EntryError, Envelope, Reply, ReplyTo};

/// Job entry field: the client's sequence number, decimal.
pub(crate) const FIELD_SEQ: &str = "seq";
/// Job entry field: where the verdict goes.
pub(crate) const FIELD_REPLY: &str = "reply";
/// Job entry field: the JSON job line.
pub(crate) const FIELD_JOB: &str = "job";

/// A stream entry id, `<ms>-<seq>`, ordered as Redis orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct StreamId {
    pub(crate) ms: u64,
    pub(crate) seq: u64,
}

impl StreamId {
    /// Parses `<ms>-<seq>` or `<ms>` (sequence 0).
    pub(crate) fn parse(text: &str) -> Option<StreamId> {
        let (ms, seq) = match text.split_once('-') {
            Some((ms, seq)) => (ms, seq),
            None => (text, "0"),
        };
        Some(StreamId {
            ms: ms.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }

    /// The smallest id greater than this one.
    pub(crate) fn successor(self) -> StreamId {
        match self.seq.checked_add(1) {
            Some(seq) => StreamId { ms: self.ms, seq },
            None => StreamId {
                ms: self.ms.saturating_add(1),
                seq: 0,
            },
        }
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// One entry as Redis returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawEntry {
    pub(crate) id: String,
    /// Field/value pairs in order; `None` for an entry deleted while it
    /// was pending (Redis before 7 reports those with nil fields).
    pub(crate) fields: Option<Vec<(Vec<u8>, Vec<u8>)>>,
}

impl RawEntry {
    fn field(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .as_ref()?
            .iter()
            .find(|(key, _)| key == name.as_bytes())
            .map(|(_, value)| value.as_slice())
    }

    fn field_names(&self) -> String {
        match &self.fields {
            None => "none, the entry was deleted".to_string(),
            Some(fields) if fields.is_empty() => "none".to_string(),
            Some(fields) => fields
                .iter()
                .map(|(key, _)| String::from_utf8_lossy(key).into_owned())
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    fn required(&self, name: &'static str) -> Result<&[u8], EntryError> {
        self.field(name).ok_or_else(|| EntryError::NotAJob {
            id: self.id.clone(),
            field: name,
            fields: self.field_names(),
        })
    }

    /// The envelope this job entry carries, or why it carries none.
    pub(crate) fn envelope(&self) -> Result<Envelope, EntryError> {
        if let Some(bytes) = self.field(FIELD_TOO_LARGE) {
            let number = |field: Option<&[u8]>| {
                field
                    .and_then(|f| std::str::from_utf8(f).ok())
                    .and_then(|text| text.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            return Err(EntryError::TooLarge {
                id: self.id.clone(),
                bytes: number(Some(bytes)),
                limit: number(self.field(FIELD_LIMIT)),
            });
        }
        let seq = self.required(FIELD_SEQ)?;
        let seq = std::str::from_utf8(seq)
            .ok()
            .and_then(|text| text.parse::<u64>().ok())
            .ok_or_else(|| EntryError::BadSeq {
                id: self.id.clone(),
                seq: String::from_utf8_lossy(seq).into_owned(),
            })?;
        let reply = self.required(FIELD_REPLY)?;
        let reply = std::str::from_utf8(reply)
            .map_err(|_| EntryError::ReplyNotUtf8 {
                id: self.id.clone(),
            })
            .and_then(|text| {
                ReplyTo::parse(text).map_err(|source| EntryError::BadReplyAddress {
                    id: self.id.clone(),
                    source,
                })
            })?;
        let job = self.required(FIELD_JOB)?.to_vec();
        Ok(Envelope { seq, job, reply })
    }

    /// The reply this results entry carries, or why it carries none.
    pub(crate) fn reply(&self) -> Result<Reply, EntryError> {
        let bytes = self
            .field(FIELD_REPLY)
            .ok_or_else(|| EntryError::NotAReply {
                id: self.id.clone(),
                fields: self.field_names(),
            })?;
        Reply::decode(bytes).map_err(|e| EntryError::UndecodableReply {
            id: self.id.clone(),
            reason: e.to_string(),
        })
    }
}

/// Why a Redis reply did not have the expected shape.
pub(crate) type ShapeError = String;

/// The entries of an `XREAD`/`XREADGROUP` reply on one stream: nil (timed
/// out), `[[name, entries]]` (RESP2) or `{name: entries}` (RESP3).
pub(crate) fn parse_read_reply(value: Value) -> Result<Vec<RawEntry>, ShapeError> {
    match value {
        Value::Nil => Ok(Vec::new()),
        Value::Array(streams) => {
            let mut out = Vec::new();
            for stream in streams {
                match stream {
                    Value::Array(pair) if pair.len() == 2 => {
                        let mut pair = pair.into_iter();
                        let _name = pair.next();
                        if let Some(entries) = pair.next() {
                            out.extend(parse_entries(entries)?);
                        }
                    }
                    other => return Err(format!("unexpected stream in read reply: {other:?}")),
                }
            }
            Ok(out)
        }
        Value::Map(streams) => {
            let mut out = Vec::new();
            for (_name, entries) in streams {
                out.extend(parse_entries(entries)?);
            }
            Ok(out)
        }
        other => Err(format!("unexpected read reply: {other:?}")),
    }
}

/// A list of `[id, [field, value, ...]]` entries (`XRANGE`, the entries
/// part of `XREAD` and `XAUTOCLAIM`).
pub(crate) fn parse_entries(value: Value) -> Result<Vec<RawEntry>, ShapeError> {
    let entries = match value {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(entries) => entries,
        other => return Err(format!("unexpected entry list: {other:?}")),
    };
    entries.into_iter().map(parse_entry).collect()
}

fn parse_entry(value: Value) -> Result<RawEntry, ShapeError> {
    let Value::Array(parts) = value else {
        return Err(format!("unexpected entry: {value:?}"));
    };
    let mut parts = parts.into_iter();
    let id = match parts.next() {
        Some(id) => text(id).ok_or("entry id is not text")?,
        None => return Err("empty entry".to_string()),
    };
    let fields = match parts.next() {
        None | Some(Value::Nil) => None,
        Some(Value::Array(flat)) => {
            let mut fields = Vec::with_capacity(flat.len() / 2);
            let mut flat = flat.into_iter();
            while let (Some(key), Some(value)) = (flat.next(), flat.next()) {
                fields.push((bytes(key), bytes(value)));
            }
            Some(fields)
        }
        Some(Value::Map(pairs)) => Some(
            pairs
                .into_iter()
                .map(|(key, value)| (bytes(key), bytes(value)))
                .collect(),
        ),
        Some(other) => return Err(format!("unexpected fields of entry {id}: {other:?}")),
    };
    Ok(RawEntry { id, fields })
}

/// The bytes of a string-like value (anything else as its debug form, so
/// a strange field still shows up in a reason instead of vanishing).
pub(crate) fn bytes(value: Value) -> Vec<u8> {
    match value {
        Value::BulkString(bytes) => bytes,
        Value::SimpleString(text) => text.into_bytes(),
        Value::VerbatimString { text, .. } => text.into_bytes(),
        Value::Int(n) => n.to_string().into_bytes(),
        Value::Okay => b"OK".to_vec(),
        other => format!("{other:?}").into_bytes(),
    }
}

/// The text of a string-like value.
pub(crate) fn text(value: Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes).ok(),
        Value::SimpleString(text) => Some(text),
        Value::VerbatimString { text, .. } => Some(text),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    #[test]
    fn ids_parse_order_and_succeed() {
        let id = StreamId::parse("5-7").unwrap();
        assert_eq!(id, StreamId { ms: 5, seq: 7 });
        assert_eq!(StreamId::parse("5"), Some(StreamId { ms: 5, seq: 0 }));
        assert_eq!(id.successor().to_string(), "5-8");
        assert_eq!(
            StreamId {
                ms: 5,
                seq: u64::MAX
            }
            .successor()
            .to_string(),
            "6-0"
        );
        assert!(StreamId::parse("x-1").is_none());
        assert!(StreamId::parse("1-").is_none());
        assert!(StreamId::parse("1-2") < StreamId::parse("2-0"));
    }

    #[test]
    fn envelopes_round_trip_through_fields() {
        let envelope = Envelope {
            seq: 42,
            job: b"{\"id\":\"x\"}".to_vec(),
            reply: ReplyTo::Shm("ring".into()),
        };
        let entry = RawEntry {
            id: "1-0".into(),
            fields: Some(vec![
                (b"seq".to_vec(), b"42".to_vec()),
                (b"reply".to_vec(), b"shm:ring".to_vec()),
                (b"job".to_vec(), envelope.job.clone()),
            ]),
        };
        assert_eq!(entry.envelope(), Ok(envelope));
    }

    #[test]
    fn broken_entries_say_what_is_wrong() {
        let entry = parse_entry(Value::Array(vec![
            bulk("3-1"),
            Value::Array(vec![bulk("junk"), bulk("1")]),
        ]))
        .unwrap();
        let reason = entry.envelope().unwrap_err().to_string();
        assert!(reason.contains("3-1") && reason.contains("`seq`") && reason.contains("junk"));

        let entry = parse_entry(Value::Array(vec![
            bulk("3-2"),
            Value::Array(vec![
                bulk("seq"),
                bulk("-4"),
                bulk("reply"),
                bulk("stream:r"),
                bulk("job"),
                bulk("{}"),
            ]),
        ]))
        .unwrap();
        assert!(
            entry
                .envelope()
                .unwrap_err()
                .to_string()
                .contains("decimal")
        );

        let deleted = parse_entry(Value::Array(vec![bulk("3-3"), Value::Nil])).unwrap();
        assert_eq!(deleted.fields, None);
        assert!(deleted.reply().unwrap_err().to_string().contains("deleted"));
    }

    #[test]
    fn read_replies_of_both_protocols_parse() {
        let entries = Value::Array(vec![Value::Array(vec![
            bulk("1-0"),
            Value::Array(vec![bulk("a"), bulk("b")]),
        ])]);
        let resp2 = Value::Array(vec![Value::Array(vec![bulk("s"), entries.clone()])]);
        let resp3 = Value::Map(vec![(bulk("s"), entries)]);
        assert_eq!(parse_read_reply(resp2).unwrap().len(), 1);
        assert_eq!(parse_read_reply(resp3).unwrap().len(), 1);
        assert!(parse_read_reply(Value::Nil).unwrap().is_empty());
        assert!(parse_read_reply(Value::Int(3)).is_err());
    }
}
