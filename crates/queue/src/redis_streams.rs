//! Redis Streams: the [`JobQueue`] contract on a stream with a consumer
//! group, so any number of servers on any hosts share the work.
//!
//! - Jobs are `XADD`ed to one stream (pipelined, one round trip per
//!   [`submit`](JobQueue::submit)); fields in `redis_streams/entries.rs`.
//! - Servers read with `XREADGROUP` in one group, one consumer name per
//!   server process, batch by batch, through a script that measures each
//!   entry first and never sends one over
//!   [`RedisOptions::max_entry_bytes`] (`redis_streams/take.rs`); an idle
//!   server polls. Clients' blocking reads of their results streams use
//!   connections of their own (`redis_streams/connection.rs`).
//! - A job is `XACK`ed by the server after its verdict is written.
//! - Entries a dead consumer left pending are taken over with `XAUTOCLAIM`
//!   (in the same script) after an idle time; one delivered more than the limit goes to the
//!   dead-letter stream with its reason (`redis_streams/dead_letter.rs`).
//! - The stream is trimmed with `XTRIM MINID` below the oldest entry any
//!   group still needs, never by length (`redis_streams/trim.rs`).
//! - Results streams (one per client, for replies that travel back through
//!   Redis) are in `redis_streams/results.rs`.
//! - Commands share a [`ConnectionManager`], which reconnects with
//!   exponential backoff: while Redis is away operations fail with
//!   [`QueueError::Redis`] and the caller retries. A Redis that came back
//!   empty has lost the group; the first command that meets `NOGROUP`
//!   creates it again.

mod connection;
mod dead_letter;
mod entries;
mod lease;
mod options;
mod results;
mod take;
mod trim;

pub use self::connection::redact_url;
pub use self::options::{Password, RedisOptions};

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::streams::{StreamPendingCountReply, StreamPendingReply};
use redis::{Client, Cmd, Pipeline, RedisError, Script, Value};

use self::connection::{BlockingPool, connect_until};
use self::entries::{FIELD_JOB, FIELD_REPLY, FIELD_SEQ, RawEntry, StreamId};
use crate::memory::too_many_deliveries;
use crate::{Delivery, Envelope, JobQueue, QueueError, QueueStats, Reply};

/// Commands per pipelined round trip in `submit`, `publish` and `ack`:
/// bounds the memory one request takes, not the batch a caller passes.
const PIPELINE_CHUNK: usize = 5_000;

/// An idle `fetch` polls first after this long, then twice as long each
/// time up to [`POLL_MAX`]: a server that waits costs Redis at most one
/// script call per 10 ms, and a job that arrives is taken within 10 ms.
const POLL_FIRST: Duration = Duration::from_millis(1);
/// The longest pause between two polls of an idle `fetch`.
const POLL_MAX: Duration = Duration::from_millis(10);

/// The Redis Streams queue. Cloning is cheap and shares the connections.
///
/// ```no_run
/// # use hotwasm_queue::{JobQueue, RedisOptions, RedisQueue};
/// # async fn run() -> Result<(), hotwasm_queue::QueueError> {
/// let queue = RedisQueue::connect(RedisOptions::new("redis://127.0.0.1:6379")).await?;
/// let stats = queue.stats().await?;
/// println!("{} jobs pending", stats.pending);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct RedisQueue {
    shared: std::sync::Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    options: RedisOptions,
    /// Every command that does not block.
    commands: ConnectionManager,
    /// `XREAD` with `BLOCK` (clients reading their results streams).
    blocking: BlockingPool,
    acks_since_trim: AtomicU64,
    /// Where the next `XAUTOCLAIM` scan of the pending entries starts.
    reclaim_cursor: Mutex<String>,
    dead_letter: Script,
    /// `XREADGROUP`/`XAUTOCLAIM` that measure entries first.
    take: Script,
    /// Ownership check and lease renewal before verdicts are written.
    renew: Script,
    /// Removal of consumers long gone.
    forget: Script,
    /// Fenced delivery of results-stream replies with their XACK.
    deliver: Script,
}

impl RedisQueue {
    /// Connects, checks that Redis answers, and creates the consumer group
    /// (and the stream) unless they exist.
    ///
    /// # Errors
    ///
    /// [`QueueError::Unreachable`] with the URL (password hidden) and the
    /// reason when Redis does not answer within
    /// [`RedisOptions::connect_timeout`]; [`QueueError::InvalidUrl`] for a
    /// URL that cannot be used; [`QueueError::Redis`] when creating the
    /// group fails.
    pub async fn connect(options: RedisOptions) -> Result<RedisQueue, QueueError> {
        let shown = redact_url(&options.url);
        let client = options.client().map_err(|e| QueueError::InvalidUrl {
            url: shown.clone(),
            reason: e.to_string(),
        })?;
        let unreachable = |reason: String| QueueError::Unreachable {
            url: shown.clone(),
            reason,
        };
        let deadline = tokio::time::Instant::now() + options.connect_timeout;
        let blocking = BlockingPool::new(
            client.clone(),
            options.connect_timeout,
            options.response_timeout,
            options.reconnect_max_delay,
        );
        let first = connect_until(
            &client,
            blocking.config(),
            deadline,
            options.connect_timeout,
        )
        .await
        .map_err(unreachable)?;
        blocking.put(first);

        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.connect_timeout))
            .set_response_timeout(Some(options.response_timeout))
            .set_number_of_retries(options.reconnect_retries)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(options.reconnect_max_delay);
        let commands = match tokio::time::timeout_at(
            deadline,
            ConnectionManager::new_with_config(client, manager_config),
        )
        .await
        {
            Ok(Ok(manager)) => manager,
            Ok(Err(e)) => return Err(unreachable(e.to_string())),
            Err(_) => {
                return Err(unreachable(format!(
                    "no answer within {:?}",
                    options.connect_timeout
                )));
            }
        };
        let queue = RedisQueue {
            shared: std::sync::Arc::new(Shared {
                options,
                commands,
                blocking,
                acks_since_trim: AtomicU64::new(0),
                reclaim_cursor: Mutex::new("0-0".to_string()),
                dead_letter: dead_letter::script(),
                take: take::script(),
                renew: lease::renew_script(),
                forget: lease::forget_script(),
                deliver: lease::deliver_script(),
            }),
        };
        queue.ensure_group().await?;
        Ok(queue)
    }

    /// The options the queue was made with.
    pub fn options(&self) -> &RedisOptions {
        &self.shared.options
    }

    /// Trims the job stream now, below the oldest entry any consumer group
    /// still needs; returns how many entries went. [`ack`](JobQueue::ack)
    /// calls this every [`RedisOptions::trim_every`] acknowledgements.
    ///
    /// # Errors
    ///
    /// [`QueueError::Redis`] when a command fails; nothing is trimmed then.
    pub async fn trim(&self) -> Result<u64, QueueError> {
        let mut connection = self.shared.commands.clone();
        trim::trim(&mut connection, &self.shared.options.stream).await
    }

    /// The consumer group as Redis sees it (`XINFO GROUPS`), for metrics:
    /// entries not yet delivered to any server (lag), delivered and not
    /// acknowledged (pending), consumers, and the dead-letter stream's
    /// length.
    ///
    /// # Errors
    ///
    /// [`QueueError::Redis`] when a command fails;
    /// [`QueueError::UnexpectedReply`] when the group is not listed.
    pub async fn group_stats(&self) -> Result<GroupStats, QueueError> {
        let options = &self.shared.options;
        let mut pipe = redis::pipe();
        pipe.cmd("XINFO").arg("GROUPS").arg(&options.stream);
        pipe.cmd("XLEN").arg(&options.dead_letters);
        let (groups, dead_letters): (Vec<std::collections::HashMap<String, Value>>, u64) =
            self.query_pipe("XINFO GROUPS", &pipe).await?;
        let group = groups
            .into_iter()
            .find(|group| {
                group
                    .get("name")
                    .and_then(|name| redis::from_redis_value::<String>(name.clone()).ok())
                    .is_some_and(|name| name == options.group)
            })
            .ok_or_else(|| {
                shape_error("XINFO GROUPS", format!("no group {} listed", options.group))
            })?;
        let number = |field: &str| {
            group
                .get(field)
                .and_then(|value| redis::from_redis_value::<u64>(value.clone()).ok())
        };
        Ok(GroupStats {
            lag: number("lag"),
            pending: number("pending").unwrap_or(0),
            consumers: number("consumers").unwrap_or(0),
            dead_letters,
        })
    }

    /// `XGROUP CREATE <stream> <group> 0 MKSTREAM`, tolerating an existing
    /// group. From `0`, not `$`: jobs a client added while the group did
    /// not exist (before the first server, or after Redis lost its data)
    /// are delivered, not skipped.
    async fn ensure_group(&self) -> Result<(), QueueError> {
        let options = &self.shared.options;
        let created: Result<(), RedisError> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&options.stream)
            .arg(&options.group)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut self.shared.commands.clone())
            .await;
        match created {
            Err(e) if e.code() != Some("BUSYGROUP") => Err(QueueError::Redis {
                command: "XGROUP CREATE",
                source: e,
            }),
            _ => Ok(()),
        }
    }

    /// Runs `attempt`; when Redis says the group is gone, creates it and
    /// runs `attempt` once more.
    async fn with_group<T, F, Fut>(&self, attempt: F) -> Result<T, QueueError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, QueueError>>,
    {
        match attempt().await {
            Err(e) if is_nogroup(&e) => {
                tracing::warn!(
                    group = %self.shared.options.group,
                    stream = %self.shared.options.stream,
                    "consumer group missing (Redis restarted without data?): creating it again"
                );
                self.ensure_group().await?;
                attempt().await
            }
            other => other,
        }
    }

    /// A command on the shared connection.
    async fn query<T: redis::FromRedisValue>(
        &self,
        command: &'static str,
        cmd: &Cmd,
    ) -> Result<T, QueueError> {
        cmd.query_async(&mut self.shared.commands.clone())
            .await
            .map_err(|source| QueueError::Redis { command, source })
    }

    /// A pipeline on the shared connection, one round trip.
    async fn query_pipe<T: redis::FromRedisValue>(
        &self,
        command: &'static str,
        pipe: &Pipeline,
    ) -> Result<T, QueueError> {
        pipe.query_async(&mut self.shared.commands.clone())
            .await
            .map_err(|source| QueueError::Redis { command, source })
    }

    /// A read that may block: on a connection of its own when it does.
    async fn read(
        &self,
        command: &'static str,
        cmd: &Cmd,
        block: Duration,
    ) -> Result<Value, QueueError> {
        if block.is_zero() {
            self.query(command, cmd).await
        } else {
            self.shared.blocking.query(command, cmd, block).await
        }
    }

    /// Dead-letters one entry (see `redis_streams/dead_letter.rs`).
    async fn move_to_dead_letters(
        &self,
        id: &str,
        reason: &str,
        deliveries: u64,
    ) -> Result<(), QueueError> {
        let options = &self.shared.options;
        self.with_group(|| async {
            self.shared
                .dead_letter
                .key(&options.stream)
                .key(&options.dead_letters)
                .arg(&options.group)
                .arg(id)
                .arg(reason)
                .arg(deliveries)
                .invoke_async::<i64>(&mut self.shared.commands.clone())
                .await
                .map(drop)
                .map_err(|source| QueueError::Redis {
                    command: "EVALSHA (dead letter)",
                    source,
                })
        })
        .await
    }

    /// New entries for `consumer`, at most `max`, without waiting; entries
    /// over [`RedisOptions::max_entry_bytes`] come with their size only
    /// (`redis_streams/take.rs`).
    async fn take_new(&self, consumer: &str, max: usize) -> Result<Vec<RawEntry>, QueueError> {
        let options = &self.shared.options;
        let reply: Value = self
            .with_group(|| async {
                self.shared
                    .take
                    .key(&options.stream)
                    .arg("new")
                    .arg(&options.group)
                    .arg(consumer)
                    .arg(max)
                    .arg(options.max_entry_bytes)
                    .invoke_async(&mut self.shared.commands.clone())
                    .await
                    .map_err(|source| QueueError::Redis {
                        command: "XREADGROUP",
                        source,
                    })
            })
            .await?;
        entries::parse_read_reply(reply).map_err(|e| shape_error("XREADGROUP", e))
    }

    /// The delivery count of each of `ids` in the group's pending list
    /// (`None` for one no longer pending), in one round trip.
    async fn delivery_counts(&self, ids: &[&str]) -> Result<Vec<Option<u64>>, QueueError> {
        let options = &self.shared.options;
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.cmd("XPENDING")
                .arg(&options.stream)
                .arg(&options.group)
                .arg(*id)
                .arg(*id)
                .arg(1);
        }
        let replies: Vec<StreamPendingCountReply> = pipe
            .query_async(&mut self.shared.commands.clone())
            .await
            .map_err(|source| QueueError::Redis {
                command: "XPENDING",
                source,
            })?;
        // Each reply lists the one entry asked for, or nothing.
        Ok(replies
            .into_iter()
            .map(|reply| {
                reply
                    .ids
                    .first()
                    .map(|pending| pending.times_delivered as u64)
            })
            .collect())
    }

    /// One `XAUTOCLAIM` page of at most `max` entries idle for `min_idle`,
    /// from the saved cursor; also whether the scan came round to the
    /// start of the pending list (the cursor is then `0-0` again).
    async fn claim_page(
        &self,
        consumer: &str,
        min_idle: Duration,
        max: usize,
    ) -> Result<(Vec<RawEntry>, bool), QueueError> {
        let options = &self.shared.options;
        let cursor = self
            .shared
            .reclaim_cursor
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let reply: Value = self
            .with_group(|| async {
                self.shared
                    .take
                    .key(&options.stream)
                    .arg("claim")
                    .arg(&options.group)
                    .arg(consumer)
                    .arg(max)
                    .arg(options.max_entry_bytes)
                    .arg(u64::try_from(min_idle.as_millis()).unwrap_or(u64::MAX))
                    .arg(&cursor)
                    .invoke_async(&mut self.shared.commands.clone())
                    .await
                    .map_err(|source| QueueError::Redis {
                        command: "XAUTOCLAIM",
                        source,
                    })
            })
            .await?;
        // [next cursor, claimed entries, ids deleted meanwhile (Redis 7;
        // Redis drops those from the pending list itself)]. Parsed by hand:
        // `StreamAutoClaimReply` refuses a whole page for one non-UTF-8
        // field name, and drops the ids of entries deleted before Redis 7.
        let Value::Array(parts) = reply else {
            return Err(shape_error("XAUTOCLAIM", format!("{reply:?}")));
        };
        let mut parts = parts.into_iter();
        let next = parts
            .next()
            .and_then(entries::text)
            .ok_or_else(|| shape_error("XAUTOCLAIM", "no cursor".to_string()))?;
        let wrapped = next == "0-0";
        *self
            .shared
            .reclaim_cursor
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = next;
        let claimed = entries::parse_entries(parts.next().unwrap_or(Value::Nil))
            .map_err(|e| shape_error("XAUTOCLAIM", e))?;
        Ok((claimed, wrapped))
    }

    /// The deliveries among claimed entries: entries deleted meanwhile are
    /// acknowledged, and one delivered more than `max_deliveries` times is
    /// dead-lettered instead.
    async fn screen_claimed(
        &self,
        claimed: Vec<RawEntry>,
        max_deliveries: u64,
    ) -> Result<Vec<Delivery>, QueueError> {
        if claimed.is_empty() {
            return Ok(Vec::new());
        }
        // Before Redis 7, entries deleted meanwhile come back with nil
        // fields: acknowledge them, there is nothing left to run.
        let (gone, claimed): (Vec<RawEntry>, Vec<RawEntry>) =
            claimed.into_iter().partition(|e| e.fields.is_none());
        if !gone.is_empty() {
            let ids: Vec<String> = gone.into_iter().map(|e| e.id).collect();
            self.ack(&ids).await?;
        }
        let ids: Vec<&str> = claimed.iter().map(|e| e.id.as_str()).collect();
        let counts = self.delivery_counts(&ids).await?;
        let mut out = Vec::with_capacity(claimed.len());
        for (entry, count) in claimed.into_iter().zip(counts) {
            // Not pending any more: its first consumer acknowledged it
            // after all, between the claim and now.
            let Some(deliveries) = count else { continue };
            if deliveries > max_deliveries {
                let reason = too_many_deliveries(deliveries, max_deliveries);
                // One entry that cannot be moved must not hold back the
                // rest of the page: it stays pending and is tried again.
                match self
                    .move_to_dead_letters(&entry.id, &reason, deliveries)
                    .await
                {
                    Ok(()) => tracing::warn!(
                        id = %entry.id,
                        deliveries,
                        "job moved to the dead-letter stream"
                    ),
                    Err(e) => tracing::warn!(
                        id = %entry.id,
                        "moving a job to the dead-letter stream failed: {e}"
                    ),
                }
                continue;
            }
            out.push(Delivery {
                envelope: entry.envelope(),
                id: entry.id,
                deliveries,
            });
        }
        Ok(out)
    }

    /// Removes the group's consumers (other than `me`) that have had
    /// nothing pending and done nothing for
    /// [`RedisOptions::forget_consumers_after`]: servers that are gone. A
    /// failure is logged; the next sweep tries again.
    async fn forget_idle_consumers(&self, me: &str) {
        let options = &self.shared.options;
        let Some(after) = options.forget_consumers_after else {
            return;
        };
        let forgotten: Result<Vec<String>, RedisError> = self
            .shared
            .forget
            .key(&options.stream)
            .arg(&options.group)
            .arg(u64::try_from(after.as_millis()).unwrap_or(u64::MAX))
            .arg(me)
            .invoke_async(&mut self.shared.commands.clone())
            .await;
        match forgotten {
            Ok(names) => {
                for name in names {
                    tracing::info!(
                        consumer = %name,
                        idle_for = ?after,
                        "removed a consumer that has been idle with nothing pending"
                    );
                }
            }
            Err(e) => tracing::warn!("removing idle consumers failed: {e}"),
        }
    }

    /// One `DELIVER` script call for `pairs` (see `redis_streams/lease.rs`).
    pub(crate) async fn deliver_chunk(
        &self,
        stream: &str,
        consumer: &str,
        pairs: &[(String, Reply)],
    ) -> Result<Vec<bool>, QueueError> {
        let options = &self.shared.options;
        let flags: Vec<u8> = self
            .with_group(|| async {
                let mut call = self.shared.deliver.key(&options.stream);
                call.key(stream).arg(&options.group).arg(consumer);
                for (id, reply) in pairs {
                    call.arg(id).arg(reply.encode());
                }
                call.invoke_async(&mut self.shared.commands.clone())
                    .await
                    .map_err(|source| QueueError::Redis {
                        command: "EVALSHA (deliver)",
                        source,
                    })
            })
            .await?;
        if flags.len() != pairs.len() {
            return Err(shape_error(
                "EVALSHA (deliver)",
                format!("{} answers for {} replies", flags.len(), pairs.len()),
            ));
        }
        let owned: Vec<bool> = flags.into_iter().map(|flag| flag == 1).collect();
        self.count_acks(owned.iter().filter(|o| **o).count() as u64)
            .await;
        Ok(owned)
    }

    /// Counts the acknowledgements and trims when enough have piled up.
    async fn count_acks(&self, acked: u64) {
        let every = self.shared.options.trim_every;
        if every == 0 {
            return;
        }
        let total = self
            .shared
            .acks_since_trim
            .fetch_add(acked, Ordering::Relaxed)
            + acked;
        if total < every {
            return;
        }
        self.shared.acks_since_trim.store(0, Ordering::Relaxed);
        // The acknowledgements are done; a failed trim only postpones
        // trimming to the next round.
        match self.trim().await {
            Ok(removed) => tracing::debug!(removed, "trimmed the job stream"),
            Err(e) => tracing::warn!(error = %e, "trimming the job stream failed"),
        }
    }
}

/// The consumer group's state, from [`RedisQueue::group_stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupStats {
    /// Entries in the stream not yet delivered to the group (`None` when
    /// Redis cannot tell, e.g. after entries were deleted mid-stream).
    pub lag: Option<u64>,
    /// Entries delivered and not yet acknowledged.
    pub pending: u64,
    /// Consumers (servers) in the group.
    pub consumers: u64,
    /// Entries in the dead-letter stream.
    pub dead_letters: u64,
}

/// A client for `options`: the URL, with the user, password and CA of the
/// options applied.
pub(crate) fn client(options: &RedisOptions) -> Result<Client, RedisError> {
    use redis::IntoConnectionInfo as _;
    let mut info = options.url.as_str().into_connection_info()?;
    let mut settings = info.redis_settings().clone();
    if let Some(user) = &options.username {
        settings = settings.set_username(user);
    }
    if let Some(password) = &options.password {
        settings = settings.set_password(&password.0);
    }
    info = info.set_redis_settings(settings);
    match &options.tls_ca_pem {
        Some(ca) => Client::build_with_tls(
            info,
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(ca.clone()),
            },
        ),
        None => Client::open(info),
    }
}

/// Whether `error` is Redis saying the consumer group does not exist.
fn is_nogroup(error: &QueueError) -> bool {
    matches!(error, QueueError::Redis { source, .. } if source.code() == Some("NOGROUP"))
}

/// A reply that did not have the shape its command documents.
fn shape_error(command: &'static str, detail: String) -> QueueError {
    QueueError::UnexpectedReply { command, detail }
}

/// Checks ids before they reach Redis, where one bad id fails the batch.
fn check_ids<'a>(ids: impl IntoIterator<Item = &'a str>) -> Result<(), QueueError> {
    for id in ids {
        if StreamId::parse(id).is_none() {
            return Err(QueueError::InvalidId { id: id.to_string() });
        }
    }
    Ok(())
}

/// `BLOCK` milliseconds for a non-zero wait (at least 1: 0 means forever).
fn block_millis(block: Duration) -> u64 {
    u64::try_from(block.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl JobQueue for RedisQueue {
    async fn submit(&self, jobs: &[Envelope]) -> Result<(), QueueError> {
        let stream = &self.shared.options.stream;
        for chunk in jobs.chunks(PIPELINE_CHUNK) {
            let mut pipe = redis::pipe();
            for job in chunk {
                pipe.cmd("XADD")
                    .arg(stream)
                    .arg("*")
                    .arg(FIELD_SEQ)
                    .arg(job.seq)
                    .arg(FIELD_REPLY)
                    .arg(job.reply.to_field())
                    .arg(FIELD_JOB)
                    .arg(&job.job[..])
                    .ignore();
            }
            self.query_pipe::<()>("XADD", &pipe).await?;
        }
        Ok(())
    }

    async fn fetch(
        &self,
        consumer: &str,
        max: usize,
        block: Duration,
    ) -> Result<Vec<Delivery>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        // The take script cannot block: poll, quickly at first.
        let deadline = tokio::time::Instant::now() + block;
        let mut pause = POLL_FIRST;
        loop {
            let entries = self.take_new(consumer, max).await?;
            let now = tokio::time::Instant::now();
            if !entries.is_empty() || now >= deadline {
                return Ok(entries
                    .into_iter()
                    .map(|entry| Delivery {
                        envelope: entry.envelope(),
                        id: entry.id,
                        deliveries: 1,
                    })
                    .collect());
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(POLL_MAX);
        }
    }

    async fn reclaim(
        &self,
        consumer: &str,
        min_idle: Duration,
        max_deliveries: u64,
        max: usize,
    ) -> Result<Vec<Delivery>, QueueError> {
        let mut out = Vec::new();
        // Page through the pending list from where the last sweep stopped
        // until the page is full or the scan has come round to the start.
        while out.len() < max {
            let (claimed, wrapped) = self.claim_page(consumer, min_idle, max - out.len()).await?;
            out.extend(self.screen_claimed(claimed, max_deliveries).await?);
            if wrapped {
                self.forget_idle_consumers(consumer).await;
                break;
            }
        }
        Ok(out)
    }

    async fn own_pending(
        &self,
        consumer: &str,
        after: &str,
        max_deliveries: u64,
        max: usize,
    ) -> Result<Vec<Delivery>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        check_ids([after])?;
        let options = &self.shared.options;
        let reply: Value = self
            .with_group(|| async {
                self.shared
                    .take
                    .key(&options.stream)
                    .arg("own")
                    .arg(&options.group)
                    .arg(consumer)
                    .arg(max)
                    .arg(options.max_entry_bytes)
                    .arg(after)
                    .invoke_async(&mut self.shared.commands.clone())
                    .await
                    .map_err(|source| QueueError::Redis {
                        command: "XREADGROUP (own pending)",
                        source,
                    })
            })
            .await?;
        let entries = entries::parse_read_reply(reply).map_err(|e| shape_error("XREADGROUP", e))?;
        self.screen_claimed(entries, max_deliveries).await
    }

    async fn renew(&self, consumer: &str, ids: &[String]) -> Result<Vec<bool>, QueueError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        check_ids(ids.iter().map(String::as_str))?;
        let options = &self.shared.options;
        let mut owned = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(PIPELINE_CHUNK) {
            let flags: Vec<u8> = self
                .with_group(|| async {
                    let mut call = self.shared.renew.key(&options.stream);
                    call.arg(&options.group).arg(consumer).arg(chunk);
                    call.invoke_async(&mut self.shared.commands.clone())
                        .await
                        .map_err(|source| QueueError::Redis {
                            command: "EVALSHA (renew)",
                            source,
                        })
                })
                .await?;
            if flags.len() != chunk.len() {
                return Err(shape_error(
                    "EVALSHA (renew)",
                    format!("{} answers for {} ids", flags.len(), chunk.len()),
                ));
            }
            owned.extend(flags.into_iter().map(|flag| flag == 1));
        }
        Ok(owned)
    }

    async fn ack(&self, ids: &[String]) -> Result<(), QueueError> {
        if ids.is_empty() {
            return Ok(());
        }
        check_ids(ids.iter().map(String::as_str))?;
        let options = &self.shared.options;
        let mut acked = 0u64;
        for chunk in ids.chunks(PIPELINE_CHUNK) {
            let mut cmd = redis::cmd("XACK");
            cmd.arg(&options.stream).arg(&options.group).arg(chunk);
            let n: u64 = self.with_group(|| self.query("XACK", &cmd)).await?;
            acked += n;
        }
        self.count_acks(acked).await;
        Ok(())
    }

    async fn dead_letter(&self, delivery: &Delivery, reason: &str) -> Result<(), QueueError> {
        check_ids([delivery.id.as_str()])?;
        self.move_to_dead_letters(&delivery.id, reason, delivery.deliveries)
            .await
    }

    async fn stats(&self) -> Result<QueueStats, QueueError> {
        let options = &self.shared.options;
        let (length, pending, dead_letters): (u64, StreamPendingReply, u64) = self
            .with_group(|| {
                let mut pipe = redis::pipe();
                pipe.cmd("XLEN").arg(&options.stream);
                pipe.cmd("XPENDING")
                    .arg(&options.stream)
                    .arg(&options.group);
                pipe.cmd("XLEN").arg(&options.dead_letters);
                async move { self.query_pipe("XLEN/XPENDING", &pipe).await }
            })
            .await?;
        let pending = pending.count() as u64;
        Ok(QueueStats {
            length,
            pending,
            dead_letters,
        })
    }
}
