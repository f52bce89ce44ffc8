//! Where Redis is, which keys the queue uses, and its timeouts.

use std::time::Duration;

/// How to reach Redis and which keys to use. [`RedisOptions::new`] fills
/// in the defaults; change fields as needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisOptions {
    /// `redis://[[user]:password@]host[:port][/db]` (or `rediss://`,
    /// `redis+unix://`).
    pub url: String,
    /// The job stream (default `hotwasm:jobs`).
    pub stream: String,
    /// The consumer group all servers join (default `hotwasm`).
    pub group: String,
    /// The dead-letter stream (default `hotwasm:jobs:dead`).
    pub dead_letters: String,
    /// How long [`RedisQueue::connect`](super::RedisQueue::connect) tries before it reports
    /// [`QueueError::Unreachable`](crate::QueueError::Unreachable), and each reconnection attempt's limit
    /// (default 3 s).
    pub connect_timeout: Duration,
    /// How long a non-blocking command may take before it fails; blocking
    /// reads get their block time plus this (default 5 s).
    pub response_timeout: Duration,
    /// Reconnection attempts, with exponential backoff, after Redis went
    /// away, before an operation fails (default 4; the next operation
    /// starts over).
    pub reconnect_retries: usize,
    /// The longest wait between two reconnection attempts (default 1 s);
    /// blocking reads back off the same way while Redis is away.
    pub reconnect_max_delay: Duration,
    /// The largest job entry a server takes, in bytes (field names and
    /// values together; default 4 MiB, above any job within the default
    /// job limits). A larger entry is measured inside Redis and never
    /// sent: the consumer dead-letters it
    /// ([`EntryError::TooLarge`](crate::EntryError::TooLarge)).
    pub max_entry_bytes: u64,
    /// The ACL user to authenticate as (default: from the URL, else
    /// `default`).
    pub username: Option<String>,
    /// The password (`requirepass` or the ACL user's), instead of one in
    /// the URL, which other users of the host could read in the process
    /// list.
    pub password: Option<Password>,
    /// The CA certificate(s), PEM, that sign the server's certificate, for
    /// a `rediss://` URL whose server the system does not already trust.
    pub tls_ca_pem: Option<Vec<u8>>,
    /// Acknowledgements between two automatic trims of the job stream
    /// (default 1,000; 0 turns automatic trimming off).
    pub trim_every: u64,
    /// Consumers of the group with nothing pending that have done nothing
    /// for this long are removed (servers that are gone; a live server
    /// polls every few milliseconds and is never this idle). Checked when
    /// a reclaim sweep has seen the whole pending list (default 10 min;
    /// `None` keeps them).
    pub forget_consumers_after: Option<Duration>,
}

impl RedisOptions {
    /// A client for these options: the URL with the user, password and CA
    /// applied (for connections of other parts, such as the fleet's).
    ///
    /// # Errors
    ///
    /// A URL redis-rs cannot use.
    pub fn client(&self) -> Result<redis::Client, redis::RedisError> {
        super::client(self)
    }

    /// Options for the Redis at `url`, everything else at its default.
    pub fn new(url: impl Into<String>) -> RedisOptions {
        RedisOptions {
            url: url.into(),
            stream: "hotwasm:jobs".to_string(),
            group: "hotwasm".to_string(),
            dead_letters: "hotwasm:jobs:dead".to_string(),
            connect_timeout: Duration::from_secs(3),
            response_timeout: Duration::from_secs(5),
            reconnect_retries: 4,
            reconnect_max_delay: Duration::from_secs(1),
            max_entry_bytes: 4 * 1024 * 1024,
            username: None,
            password: None,
            tls_ca_pem: None,
            trim_every: 1_000,
            forget_consumers_after: Some(Duration::from_secs(600)),
        }
    }
}

impl Default for RedisOptions {
    /// Options for `redis://127.0.0.1:6379`.
    fn default() -> RedisOptions {
        RedisOptions::new("redis://127.0.0.1:6379")
    }
}

/// A Redis password: never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(pub String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(..)")
    }
}
