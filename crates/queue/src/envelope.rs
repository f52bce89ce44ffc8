//! What travels: a job in its [`Envelope`], handed to a server as a
//! [`Delivery`], and its verdict back as a [`Reply`] to the envelope's
//! [`ReplyTo`] address.

use std::fmt;

use hotwasm_auth::MacKey;
use hotwasm_jobs::Verdict;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::{EntryError, ReplyToError};

/// The kinds of reply address, one per way a verdict can travel back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReplyKind {
    /// A results stream of the queue ([`ReplyTo::Stream`]).
    Stream,
    /// A shared-memory ring on the server's host ([`ReplyTo::Shm`]).
    Shm,
}

impl fmt::Display for ReplyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReplyKind::Stream => "stream",
            ReplyKind::Shm => "shm",
        })
    }
}

/// Where a job's verdict goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReplyTo {
    /// A results stream of the queue, by key (one per client).
    Stream(String),
    /// A shared-memory verdict ring on the server's host, by ring name
    /// (see `hotwasm-shm`); for clients on the same host as the servers.
    Shm(String),
}

impl ReplyTo {
    /// Which kind of address this is: what picks the
    /// [`ReplySink`](crate::reply::ReplySink) that writes to it.
    pub fn kind(&self) -> ReplyKind {
        match self {
            ReplyTo::Stream(_) => ReplyKind::Stream,
            ReplyTo::Shm(_) => ReplyKind::Shm,
        }
    }

    /// The address within its kind: the stream key or the ring name.
    pub fn name(&self) -> &str {
        match self {
            ReplyTo::Stream(name) | ReplyTo::Shm(name) => name,
        }
    }

    /// The field form: `stream:<key>` or `shm:<name>`.
    pub fn to_field(&self) -> String {
        format!("{}:{}", self.kind(), self.name())
    }

    /// Parses the field form.
    ///
    /// # Errors
    ///
    /// [`ReplyToError`] naming the field when it is neither form or names
    /// nothing.
    pub fn parse(field: &str) -> Result<ReplyTo, ReplyToError> {
        let parsed = if let Some(key) = field.strip_prefix("stream:") {
            ReplyTo::Stream(key.to_string())
        } else if let Some(name) = field.strip_prefix("shm:") {
            ReplyTo::Shm(name.to_string())
        } else {
            return Err(ReplyToError::UnknownForm {
                field: field.to_string(),
            });
        };
        if parsed.name().is_empty() {
            return Err(ReplyToError::Empty {
                field: field.to_string(),
            });
        }
        Ok(parsed)
    }
}

/// A job on its way to a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The client's sequence number for the job, echoed in its [`Reply`]
    /// (job ids are the caller's and need not be unique).
    pub seq: u64,
    /// The job as one JSON job line, unparsed: a malformed job must still
    /// get an error verdict, so the server parses it.
    pub job: Vec<u8>,
    /// Where the verdict goes.
    pub reply: ReplyTo,
}

/// A job handed to one consumer, to be acknowledged once its verdict is
/// written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The queue's id of the entry ([`JobQueue::ack`](crate::JobQueue::ack) takes it).
    pub id: String,
    /// How many times the entry has been delivered, this time included.
    pub deliveries: u64,
    /// The envelope, or why the entry is not one (an entry put into the
    /// stream by hand, missing fields): such an entry has no reply address,
    /// so it goes to the dead-letter stream with this reason.
    pub envelope: Result<Envelope, EntryError>,
}

/// A verdict on its way back to the client.
///
/// A client accepts a reply only if it answers the job it sent under that
/// `seq` ([`Reply::job_digest`] is the SHA-256 of the job bytes the server
/// ran, which defeats a job that names someone else's reply address) and,
/// when the deployment has a reply key, only if its [`Reply::tag`] proves
/// a server holding the key made it (which defeats anyone who can write
/// to a results stream or a ring).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// The [`Envelope::seq`] of the job.
    pub seq: u64,
    /// The server (consumer name) that produced it.
    pub server: String,
    /// The verdict.
    pub verdict: Verdict,
    /// SHA-256 (hex) of the [`Envelope::job`] bytes the verdict answers
    /// ([`Reply::digest_of`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_digest: Option<String>,
    /// HMAC-SHA256 (hex) with the deployment's reply key over every field
    /// but the verdict's `micros` ([`Reply::sign`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

impl Reply {
    /// A reply to the job whose bytes are `job`, not yet signed.
    pub fn answering(seq: u64, server: String, verdict: Verdict, job: &[u8]) -> Reply {
        Reply {
            seq,
            server,
            verdict,
            job_digest: Some(Reply::digest_of(job)),
            tag: None,
        }
    }

    /// The [`Reply::job_digest`] of a job's bytes.
    pub fn digest_of(job: &[u8]) -> String {
        hex::encode(Sha256::digest(job))
    }

    /// Sets [`Reply::tag`] for `key` (again, after a field changed).
    pub fn sign(&mut self, key: &MacKey) {
        let tag = self.with_signed_parts(|parts| key.tag(parts));
        self.tag = Some(hex::encode(tag));
    }

    /// Whether [`Reply::tag`] is `key`'s tag of this reply.
    pub fn verify(&self, key: &MacKey) -> bool {
        let mut tag = [0u8; hotwasm_auth::mac::TAG_BYTES];
        match &self.tag {
            Some(text) if hex::decode_to_slice(text, &mut tag).is_ok() => {
                self.with_signed_parts(|parts| key.verify(parts, &tag))
            }
            _ => false,
        }
    }

    /// The fields a tag covers, each as bytes, an absent one apart from
    /// an empty one. `micros` is left out: a float need not survive JSON
    /// bit for bit, and the timing decides nothing.
    fn with_signed_parts<T>(&self, use_parts: impl FnOnce(&[&[u8]]) -> T) -> T {
        fn optional(value: Option<&String>) -> Vec<u8> {
            match value {
                None => vec![0],
                Some(text) => [&[1u8][..], text.as_bytes()].concat(),
            }
        }
        let verdict = &self.verdict;
        let seq = self.seq.to_le_bytes();
        let id = optional(verdict.id.as_ref());
        let reason = optional(verdict.reason.as_ref());
        let module = optional(verdict.module.as_ref());
        let digest = optional(self.job_digest.as_ref());
        use_parts(&[
            b"hotwasm-reply-v1",
            &seq,
            self.server.as_bytes(),
            &digest,
            &id,
            &[u8::from(verdict.valid)],
            &reason,
            verdict.runtime.as_bytes(),
            &module,
        ])
    }

    /// The wire form (JSON), as stored in results streams and shm slots.
    ///
    /// # Panics
    ///
    /// Never in practice: see the reason on the `expect` (an empty payload
    /// sent on instead would be a silent wrong answer).
    #[allow(
        clippy::expect_used,
        reason = "a struct of strings, numbers and bools always serializes to JSON"
    )]
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a reply serializes to JSON")
    }

    /// Parses the wire form.
    ///
    /// # Errors
    ///
    /// The JSON error when the bytes are not a reply.
    pub fn decode(bytes: &[u8]) -> Result<Reply, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_addresses_round_trip_and_reject_garbage() {
        for reply in [
            ReplyTo::Stream("hotwasm:results:c1".into()),
            ReplyTo::Shm("hotwasm-c1".into()),
        ] {
            assert_eq!(ReplyTo::parse(&reply.to_field()), Ok(reply));
        }
        assert!(ReplyTo::parse("tcp:1.2.3.4").is_err());
        assert!(ReplyTo::parse("stream:").is_err());
    }

    #[test]
    fn a_signed_reply_verifies_only_unchanged_and_with_its_key() {
        let key = MacKey::generate();
        let mut reply = Reply::answering(
            7,
            "a".into(),
            Verdict::error(Some("j".into()), "wasmtime", "bad"),
            b"job bytes",
        );
        assert!(!reply.verify(&key), "unsigned");
        reply.sign(&key);
        let back = Reply::decode(&reply.encode()).expect("round trip");
        assert!(back.verify(&key));
        assert!(!back.verify(&MacKey::generate()));
        let mut changed = back.clone();
        changed.verdict.micros = 99.0;
        assert!(changed.verify(&key), "the timing is not covered");
        for change in [
            |r: &mut Reply| r.seq += 1,
            |r: &mut Reply| r.verdict.valid = true,
            |r: &mut Reply| r.verdict.reason = None,
            |r: &mut Reply| r.verdict.id = Some(String::new()),
            |r: &mut Reply| r.server.push('x'),
            |r: &mut Reply| r.job_digest = Some(Reply::digest_of(b"other job")),
        ] {
            let mut forged = back.clone();
            change(&mut forged);
            assert!(!forged.verify(&key), "{forged:?}");
        }
    }

    #[test]
    fn an_address_names_its_kind_and_its_target() {
        let stream = ReplyTo::Stream("results:c1".into());
        assert_eq!(
            (stream.kind(), stream.name()),
            (ReplyKind::Stream, "results:c1")
        );
        assert_eq!(stream.to_field(), "stream:results:c1");
        let ring = ReplyTo::Shm("c1".into());
        assert_eq!((ring.kind(), ring.name()), (ReplyKind::Shm, "c1"));
        assert_eq!(ring.to_field(), "shm:c1");
    }
}
