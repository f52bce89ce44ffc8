//! Job lines: the JSON wire form and its validation.

use hotwasm_abi::{Scheme, VerifyRequest};
use serde::{Deserialize, Serialize};

/// A job as it appears on one JSON line; bytes are hex strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobLine {
    /// Caller-chosen identifier, echoed in the verdict.
    pub id: String,
    /// `"schnorr"` or `"ecdsa"`.
    pub scheme: String,
    /// Public key, hex.
    pub public_key: String,
    /// Signature, hex.
    pub signature: String,
    /// Message, hex (may be empty).
    pub message: String,
    /// The verdict the job should get, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<bool>,
}

/// Bounds on what a job may carry, so one job cannot make a worker hash
/// gigabytes or allocate without limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobLimits {
    /// Largest message accepted, in bytes.
    pub max_message_bytes: usize,
    /// Largest public key or signature accepted, in bytes.
    pub max_key_or_signature_bytes: usize,
}

impl Default for JobLimits {
    fn default() -> Self {
        JobLimits {
            max_message_bytes: 1024 * 1024,
            max_key_or_signature_bytes: 1024,
        }
    }
}

/// A validated job, bytes decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Caller-chosen identifier.
    pub id: String,
    /// The scheme, which picks the module.
    pub scheme: Scheme,
    /// Public key bytes.
    pub public_key: Vec<u8>,
    /// Signature bytes.
    pub signature: Vec<u8>,
    /// Message bytes.
    pub message: Vec<u8>,
    /// The expected verdict, when known.
    pub expect: Option<bool>,
}

/// Why a line is not a usable job.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// Not a JSON object with the job fields (truncated, wrong types,
    /// missing fields).
    #[error("not a job: {0}")]
    Json(String),
    /// The id is empty.
    #[error("id is empty")]
    EmptyId,
    /// The scheme is not one hotwasm knows.
    #[error("unknown scheme {0:?} (expected \"schnorr\" or \"ecdsa\")")]
    UnknownScheme(String),
    /// A byte field is not valid hex.
    #[error("{field} is not valid hex: {detail}")]
    BadHex {
        /// The field.
        field: &'static str,
        /// What the hex decoder said.
        detail: String,
    },
    /// A byte field exceeds its limit.
    #[error("{field} is {len} bytes, more than the limit of {limit}")]
    TooLarge {
        /// The field.
        field: &'static str,
        /// Its decoded length (or an upper bound from the hex length).
        len: usize,
        /// The limit in force.
        limit: usize,
    },
}

impl JobLine {
    /// Parses one line of JSON.
    ///
    /// # Errors
    ///
    /// [`JobError::Json`] when the line is not a job object.
    pub fn parse(line: &str) -> Result<JobLine, JobError> {
        serde_json::from_str(line).map_err(|e| JobError::Json(e.to_string()))
    }

    /// Validates the fields and decodes the hex.
    ///
    /// # Errors
    ///
    /// [`JobError`] naming the first field that is wrong.
    pub fn validate(&self, limits: &JobLimits) -> Result<Job, JobError> {
        // Id and scheme first, as `Job::new` does; sizes are checked on the
        // hex before decoding allocates for it.
        check_header(&self.id, &self.scheme)?;
        Job::new(
            self.id.clone(),
            &self.scheme,
            decode_hex(
                "public_key",
                &self.public_key,
                limits.max_key_or_signature_bytes,
            )?,
            decode_hex(
                "signature",
                &self.signature,
                limits.max_key_or_signature_bytes,
            )?,
            decode_hex("message", &self.message, limits.max_message_bytes)?,
            self.expect,
            limits,
        )
    }
}

/// A non-empty id and a known scheme.
fn check_header(id: &str, scheme: &str) -> Result<Scheme, JobError> {
    if id.is_empty() {
        return Err(JobError::EmptyId);
    }
    Scheme::from_name(scheme).ok_or_else(|| JobError::UnknownScheme(scheme.to_string()))
}

/// Decodes hex, refusing oversized fields before allocating for them.
fn decode_hex(field: &'static str, hex: &str, limit: usize) -> Result<Vec<u8>, JobError> {
    let len = hex.len().div_ceil(2);
    if len > limit {
        return Err(JobError::TooLarge { field, len, limit });
    }
    hex::decode(hex).map_err(|e| JobError::BadHex {
        field,
        detail: e.to_string(),
    })
}

impl Job {
    /// A job from its fields, validated: a non-empty id, a known scheme,
    /// every byte field within `limits`. The one constructor every front
    /// door (JSON lines, gRPC) goes through.
    ///
    /// # Errors
    ///
    /// [`JobError`] naming the first field that is wrong.
    pub fn new(
        id: String,
        scheme: &str,
        public_key: Vec<u8>,
        signature: Vec<u8>,
        message: Vec<u8>,
        expect: Option<bool>,
        limits: &JobLimits,
    ) -> Result<Job, JobError> {
        let scheme = check_header(&id, scheme)?;
        let fields = [
            (
                "public_key",
                public_key.len(),
                limits.max_key_or_signature_bytes,
            ),
            (
                "signature",
                signature.len(),
                limits.max_key_or_signature_bytes,
            ),
            ("message", message.len(), limits.max_message_bytes),
        ];
        for (field, len, limit) in fields {
            if len > limit {
                return Err(JobError::TooLarge { field, len, limit });
            }
        }
        Ok(Job {
            id,
            scheme,
            public_key,
            signature,
            message,
            expect,
        })
    }

    /// The waPC `verify` request for this job.
    pub fn request(&self) -> VerifyRequest {
        VerifyRequest {
            scheme: self.scheme.as_str().to_string(),
            public_key: self.public_key.clone(),
            signature: self.signature.clone(),
            message: self.message.clone(),
        }
    }

    /// The wire form of this job.
    pub fn to_line(&self) -> JobLine {
        JobLine {
            id: self.id.clone(),
            scheme: self.scheme.as_str().to_string(),
            public_key: hex::encode(&self.public_key),
            signature: hex::encode(&self.signature),
            message: hex::encode(&self.message),
            expect: self.expect,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(json: &str) -> Result<Job, JobError> {
        JobLine::parse(json)?.validate(&JobLimits::default())
    }

    #[test]
    fn a_well_formed_line_decodes() {
        let job = line(r#"{"id":"a","scheme":"ecdsa","public_key":"02ab","signature":"3006","message":"","expect":false}"#)
            .expect("valid job");
        assert_eq!(job.scheme, Scheme::Ecdsa);
        assert_eq!(job.public_key, vec![0x02, 0xab]);
        assert!(job.message.is_empty());
        assert_eq!(job.expect, Some(false));
        assert_eq!(job.to_line().validate(&JobLimits::default()), Ok(job));
    }

    #[test]
    fn malformed_lines_name_what_is_wrong() {
        let truncated = r#"{"id":"a","scheme":"ecdsa","public_k"#;
        assert!(matches!(line(truncated), Err(JobError::Json(_))));
        let missing = r#"{"id":"a","scheme":"ecdsa","public_key":"02"}"#;
        assert!(matches!(line(missing), Err(JobError::Json(e)) if e.contains("signature")));
        let bad_hex =
            r#"{"id":"a","scheme":"ecdsa","public_key":"zz","signature":"","message":""}"#;
        assert!(matches!(
            line(bad_hex),
            Err(JobError::BadHex {
                field: "public_key",
                ..
            })
        ));
        let odd_hex =
            r#"{"id":"a","scheme":"ecdsa","public_key":"02","signature":"abc","message":""}"#;
        assert!(matches!(
            line(odd_hex),
            Err(JobError::BadHex {
                field: "signature",
                ..
            })
        ));
        let unknown = r#"{"id":"a","scheme":"rsa","public_key":"","signature":"","message":""}"#;
        assert_eq!(line(unknown), Err(JobError::UnknownScheme("rsa".into())));
        let empty_id = r#"{"id":"","scheme":"ecdsa","public_key":"","signature":"","message":""}"#;
        assert_eq!(line(empty_id), Err(JobError::EmptyId));
    }

    #[test]
    fn oversized_message_is_refused_before_decoding() {
        let limits = JobLimits {
            max_message_bytes: 4,
            ..JobLimits::default()
        };
        let job = JobLine {
            id: "big".into(),
            scheme: "schnorr".into(),
            public_key: String::new(),
            signature: String::new(),
            message: "00".repeat(5),
            expect: None,
        };
        assert_eq!(
            job.validate(&limits),
            Err(JobError::TooLarge {
                field: "message",
                len: 5,
                limit: 4
            })
        );
    }
}
