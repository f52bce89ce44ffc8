//! Connections to Redis: the first contact (bounded, with the reason it
//! failed), the pool of connections that only blocking reads use, and URLs
//! fit to print.
//!
//! A blocking `XREADGROUP`/`XREAD` holds its connection until it returns,
//! so it must not run on the multiplexed connection every other command
//! shares. Each blocking read takes a connection of its own from the pool
//! (opening one if none is idle) and gives it back afterwards, so several
//! tasks of one process can block at once without queueing behind each
//! other.

use std::sync::Mutex;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder, Retryable};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, Cmd, ErrorKind, RedisError, Value};
use tokio::time::Instant;

use crate::QueueError;

/// Idle blocking connections kept for reuse; more are opened on demand
/// and closed after use.
const MAX_IDLE: usize = 16;

/// Waits between first-contact attempts: 50 ms doubling to 500 ms, until
/// the deadline.
const FIRST_CONTACT: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_millis(50))
    .with_max_delay(Duration::from_millis(500))
    .without_max_times();

/// The delays of a backoff in progress.
type Delays = <ExponentialBuilder as BackoffBuilder>::Backoff;

/// Opens a connection and checks it answers `PING`, retrying with backoff
/// until `deadline`.
///
/// # Errors
///
/// Why the last attempt failed, when none succeeded in time or the server
/// refused us for a reason a retry cannot fix (authentication).
pub(crate) async fn connect_until(
    client: &Client,
    config: &AsyncConnectionConfig,
    deadline: Instant,
    timeout: Duration,
) -> Result<MultiplexedConnection, String> {
    let mut last = format!("no answer within {timeout:?}");
    let attempt = || async {
        let mut connection = client
            .get_multiplexed_async_connection_with_config(config)
            .await?;
        redis::cmd("PING")
            .query_async::<()>(&mut connection)
            .await?;
        Ok::<_, RedisError>(connection)
    };
    let retrying = attempt
        .retry(FIRST_CONTACT)
        .sleep(tokio::time::sleep)
        .when(is_retryable)
        .notify(|e, _| last = e.to_string());
    match tokio::time::timeout_at(deadline, retrying).await {
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(last),
    }
}

/// Whether trying again later may help (the server is not up yet, or
/// went away), as opposed to a wrong password or URL.
fn is_retryable(error: &RedisError) -> bool {
    error.is_io_error() || error.is_connection_refusal() || error.is_timeout()
}

/// Connections reserved for blocking reads.
#[derive(Debug)]
pub(crate) struct BlockingPool {
    client: Client,
    config: AsyncConnectionConfig,
    idle: Mutex<Vec<MultiplexedConnection>>,
    /// How the waits between failed openings grow.
    backoff: ExponentialBuilder,
    reconnect: Mutex<Reconnect>,
    /// Added to the block time to bound a blocking read whose server went
    /// silent.
    slack: Duration,
}

impl BlockingPool {
    /// A pool opening connections with `connect_timeout`, waiting up to
    /// `max_delay` between attempts while Redis is away; a blocking read
    /// gives up `slack` after its block time.
    pub(crate) fn new(
        client: Client,
        connect_timeout: Duration,
        slack: Duration,
        max_delay: Duration,
    ) -> BlockingPool {
        // No response timeout on the connection itself: the block time
        // differs per call, so `query` bounds each call instead.
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(None);
        let backoff = ExponentialBuilder::new()
            .with_min_delay(Duration::from_millis(50))
            .with_max_delay(max_delay)
            .without_max_times();
        BlockingPool {
            client,
            config,
            idle: Mutex::new(Vec::new()),
            backoff,
            reconnect: Mutex::new(Reconnect::new(backoff)),
            slack,
        }
    }

    /// Opens a connection, first waiting out the backoff left by earlier
    /// failed attempts (but not past `budget`), so a caller retrying in a
    /// loop while Redis is away does not hammer it.
    async fn open(&self, budget: Duration) -> Result<MultiplexedConnection, RedisError> {
        let not_before = self
            .reconnect
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .not_before;
        if let Some(not_before) = not_before {
            tokio::time::sleep_until(not_before.min(Instant::now() + budget)).await;
        }
        let opened = self
            .client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await;
        let mut reconnect = self.reconnect.lock().unwrap_or_else(|p| p.into_inner());
        match &opened {
            Ok(_) => *reconnect = Reconnect::new(self.backoff),
            Err(_) => {
                // The delays never run out (no maximum of attempts).
                let delay = reconnect.delays.next().unwrap_or(Duration::ZERO);
                reconnect.not_before = Some(Instant::now() + delay);
            }
        }
        opened
    }

    /// The connection settings (for the first contact).
    pub(crate) fn config(&self) -> &AsyncConnectionConfig {
        &self.config
    }

    /// Keeps a working connection for reuse.
    pub(crate) fn put(&self, connection: MultiplexedConnection) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(connection);
        }
    }

    fn take(&self) -> Option<MultiplexedConnection> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop()
    }

    /// Runs a blocking read that waits at most `block` on a connection of
    /// its own.
    ///
    /// # Errors
    ///
    /// [`QueueError::Redis`] naming `command` when no connection can be
    /// opened or the command fails; [`QueueError::NoAnswer`] when no answer
    /// comes within `block` plus the slack.
    pub(crate) async fn query(
        &self,
        command: &'static str,
        cmd: &Cmd,
        block: Duration,
    ) -> Result<Value, QueueError> {
        let fail = |source| QueueError::Redis { command, source };
        let mut connection = match self.take() {
            Some(connection) => connection,
            None => self.open(block).await.map_err(fail)?,
        };
        let limit = block.saturating_add(self.slack);
        match tokio::time::timeout(limit, cmd.query_async::<Value>(&mut connection)).await {
            Ok(Ok(value)) => {
                self.put(connection);
                Ok(value)
            }
            Ok(Err(e)) => {
                // A server error leaves the connection usable; anything
                // else (I/O, protocol) means it is gone.
                if matches!(e.kind(), ErrorKind::Server(_)) {
                    self.put(connection);
                }
                Err(fail(e))
            }
            Err(_) => Err(QueueError::NoAnswer {
                command,
                waited: limit,
            }),
        }
    }
}

/// The backoff after failed openings in a row, and when the next may start.
#[derive(Debug)]
struct Reconnect {
    delays: Delays,
    not_before: Option<Instant>,
}

impl Reconnect {
    fn new(backoff: ExponentialBuilder) -> Reconnect {
        Reconnect {
            delays: backoff.build(),
            not_before: None,
        }
    }
}

/// `url` with any password replaced by `***`, fit for messages and logs.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), url),
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => format!("***@{host}"),
        },
        None => authority.to_string(),
    };
    // Unix-socket URLs carry the password as `?pass=` / `?password=`.
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key == "pass" || key == "password" => format!("{key}=***"),
                    _ => pair.to_string(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}{authority}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact_url("redis://127.0.0.1:6379/0"),
            "redis://127.0.0.1:6379/0"
        );
        assert_eq!(
            redact_url("redis://:s3cret@host:6379"),
            "redis://:***@host:6379"
        );
        assert_eq!(
            redact_url("rediss://user:s3cret@host/2"),
            "rediss://user:***@host/2"
        );
        assert_eq!(redact_url("redis://s3cret@host"), "redis://***@host");
        assert_eq!(
            redact_url("redis+unix:///run/redis.sock?db=1&pass=s3cret"),
            "redis+unix:///run/redis.sock?db=1&pass=***"
        );
    }
}
