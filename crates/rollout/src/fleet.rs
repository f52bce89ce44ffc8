//! The fleet's records in Redis, and every read and write of them.
//!
//! Keys, under a prefix (`hotwasm:fleet` by default):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `P:state` | hash | per scheme: its [`SchemeState`] (JSON) and `SCHEME:rev` |
//! | `P:control` | stream | one entry per change: scheme and revision (servers follow it) |
//! | `P:history` | stream | [`HistoryEntry`] per change, capped at ~10,000 |
//! | `P:modules` | hash | sha256 → name, size, who published, when |
//! | `P:module:SHA256` | string | a published module's bytes |
//! | `P:trial:ROLLOUT` | hash | a trial's fleet-wide [`TrialTotals`] |
//! | `P:disagreements` | stream | [`DisagreementRecord`]s, capped at ~1,000 |
//! | `P:servers` | sorted set | server name → last heartbeat (ms) |
//! | `P:server:NAME` | string | the server's [`ServerReport`], expires after a day |
//!
//! A change of a scheme's state is a compare-and-set on its revision (one
//! Lua script that also appends to the control stream and the history), so
//! two operators — or two servers deciding the same promotion — cannot
//! both apply a change made from the same state.

use std::collections::BTreeMap;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncCommands as _, Client, Script};

use crate::FleetError;
use crate::state::{
    DisagreementRecord, HistoryEntry, SchemeState, ServerReport, TrialTotals, Why, now_ms,
};

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "hotwasm:fleet";

/// Largest module `publish` stores, in bytes.
pub const MAX_MODULE_BYTES: usize = 64 << 20;

/// History entries kept (approximately).
const HISTORY_KEPT: u64 = 10_000;

/// Disagreements kept (approximately).
const DISAGREEMENTS_KEPT: u64 = 1_000;

/// Compare-and-set attempts of one change before it gives up.
const UPDATE_ATTEMPTS: u32 = 16;

/// How long a server's report outlives its last heartbeat.
const REPORT_TTL: Duration = Duration::from_secs(24 * 3600);

/// The compare-and-set of a scheme's state: applies only if the stored
/// revision is the expected one; appends the change to the control stream
/// and, if given, an entry to the history.
const CHANGE: &str = r"
local rev = tonumber(redis.call('HGET', KEYS[1], ARGV[1] .. ':rev') or '0')
if rev ~= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3], ARGV[1] .. ':rev', rev + 1)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', '1000', '*', 'scheme', ARGV[1], 'rev', rev + 1)
if ARGV[4] ~= '' then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', 'entry', ARGV[4])
end
return 1
";

/// A connection to the fleet's records.
#[derive(Clone)]
pub struct Fleet {
    prefix: String,
    client: Client,
    commands: ConnectionManager,
    change: Script,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Fleet {
    /// Connects with `options` (URL, credentials, TLS) to the records under
    /// `prefix`.
    ///
    /// # Errors
    ///
    /// [`FleetError::Redis`] when Redis cannot be reached in
    /// `options.connect_timeout` or refuses us.
    pub async fn connect(
        options: &hotwasm_queue::RedisOptions,
        prefix: &str,
    ) -> Result<Fleet, FleetError> {
        let client = options
            .client()
            .map_err(|e| FleetError::redis("connecting", e))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.connect_timeout))
            .set_response_timeout(Some(options.response_timeout))
            .set_number_of_retries(options.reconnect_retries)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(options.reconnect_max_delay);
        let commands = tokio::time::timeout(
            options.connect_timeout,
            ConnectionManager::new_with_config(client.clone(), config),
        )
        .await
        .map_err(|_| FleetError::Unreachable(hotwasm_queue::redact_url(&options.url)))?
        .map_err(|e| FleetError::redis("connecting", e))?;
        Ok(Fleet {
            prefix: prefix.to_string(),
            client,
            commands,
            change: Script::new(CHANGE),
        })
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, suffix: &str) -> String {
        format!("{}:{suffix}", self.prefix)
    }

    fn connection(&self) -> ConnectionManager {
        self.commands.clone()
    }

    /// Stores `wasm` as a version of `name` under its SHA-256 (once: a
    /// second publish of the same bytes changes nothing) and announces it
    /// on the control stream, so servers can compile it ahead of its
    /// activation. Returns `name@sha256` and whether it was new.
    ///
    /// # Errors
    ///
    /// [`FleetError::BadModule`] for bytes that are not WebAssembly or are
    /// larger than [`MAX_MODULE_BYTES`]; [`FleetError::Redis`].
    pub async fn publish(
        &self,
        name: &str,
        wasm: &[u8],
        by: &str,
    ) -> Result<(String, bool), FleetError> {
        if !wasm.starts_with(b"\0asm") {
            return Err(FleetError::BadModule(
                "not a WebAssembly module (no \\0asm header)".into(),
            ));
        }
        if wasm.len() > MAX_MODULE_BYTES {
            return Err(FleetError::BadModule(format!(
                "{} bytes, over the {MAX_MODULE_BYTES} a published module may have",
                wasm.len()
            )));
        }
        let sha = hotwasm_modules::content_hash(wasm);
        let spec = format!("{name}@{sha}");
        let mut connection = self.connection();
        let meta = serde_json::json!({
            "name": name, "bytes": wasm.len(), "by": by, "at_ms": now_ms(),
        });
        // Bytes and index together: a version is never stored unindexed.
        let (stored, _): (Option<String>, bool) = redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(self.key(&format!("module:{sha}")))
            .arg(wasm)
            .arg("NX")
            .cmd("HSETNX")
            .arg(self.key("modules"))
            .arg(&sha)
            .arg(meta.to_string())
            .query_async(&mut connection)
            .await
            .map_err(|e| FleetError::redis("storing the module", e))?;
        let new = stored.is_some();
        if new {
            self.record(&HistoryEntry {
                at_ms: now_ms(),
                by: by.to_string(),
                scheme: name.to_string(),
                from: None,
                to: Some(spec.clone()),
                why: Why::Published,
                detail: format!("{} bytes", wasm.len()),
            })
            .await?;
            let _: String = redis::cmd("XADD")
                .arg(self.key("control"))
                .arg("MAXLEN")
                .arg("~")
                .arg(1000)
                .arg("*")
                .arg("published")
                .arg(&spec)
                .query_async(&mut connection)
                .await
                .map_err(|e| FleetError::redis("announcing the module", e))?;
        }
        Ok((spec, new))
    }

    /// The bytes published under `sha256`, if any: at most
    /// [`MAX_MODULE_BYTES`] (measured before they are read), and checked to
    /// hash to `sha256`.
    ///
    /// # Errors
    ///
    /// [`FleetError::BadModule`] for a value too large or whose hash is not
    /// its key (a writer of the records cannot pass one module off as
    /// another); [`FleetError::Redis`].
    pub async fn module_bytes(&self, sha256: &str) -> Result<Option<Vec<u8>>, FleetError> {
        let key = self.key(&format!("module:{sha256}"));
        let mut connection = self.connection();
        let size: usize = connection
            .strlen(&key)
            .await
            .map_err(|e| FleetError::redis("measuring a module", e))?;
        if size > MAX_MODULE_BYTES {
            return Err(FleetError::BadModule(format!(
                "the module stored under {sha256} has {size} bytes, over {MAX_MODULE_BYTES}"
            )));
        }
        let wasm: Option<Vec<u8>> = connection
            .get(&key)
            .await
            .map_err(|e| FleetError::redis("reading a module", e))?;
        match wasm {
            Some(wasm) if hotwasm_modules::content_hash(&wasm) != sha256 => {
                Err(FleetError::BadModule(format!(
                    "the bytes stored under {sha256} hash to {}: not that version",
                    hotwasm_modules::content_hash(&wasm)
                )))
            }
            wasm => Ok(wasm),
        }
    }

    /// The published versions: `name@sha256` → (size, who, when).
    ///
    /// # Errors
    ///
    /// [`FleetError::Redis`].
    pub async fn published(&self) -> Result<Vec<(String, serde_json::Value)>, FleetError> {
        let all: BTreeMap<String, String> = self
            .connection()
            .hgetall(self.key("modules"))
            .await
            .map_err(|e| FleetError::redis("listing modules", e))?;
        Ok(all
            .into_iter()
            .filter_map(|(sha, meta)| {
                let meta: serde_json::Value = serde_json::from_str(&meta).ok()?;
                let name = meta["name"].as_str()?.to_string();
                Some((format!("{name}@{sha}"), meta))
            })
            .collect())
    }

    /// `name@HASH` (a prefix of 4+ hex digits) as `name@sha256`: a
    /// published version of `name`, or a module built into this binary.
    ///
    /// # Errors
    ///
    /// [`FleetError::UnknownVersion`] when nothing or several versions
    /// match; [`FleetError::Redis`].
    pub async fn resolve(&self, spec: &str) -> Result<String, FleetError> {
        let (name, prefix) = hotwasm_registry::parse_spec(spec)
            .map_err(|e| FleetError::UnknownVersion(e.to_string()))?;
        let mut matches: Vec<String> = self
            .published()
            .await?
            .into_iter()
            .map(|(spec, _)| spec)
            .chain(
                hotwasm_modules::built()
                    .iter()
                    .map(|m| format!("{}@{}", m.scheme, m.hash())),
            )
            .filter(|candidate| {
                candidate
                    .split_once('@')
                    .is_some_and(|(n, sha)| n == name && sha.starts_with(&prefix))
            })
            .collect();
        matches.sort();
        matches.dedup();
        match matches.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(FleetError::UnknownVersion(format!(
                "no published or built-in version {spec} (`hotwasm modules publish` stores one)"
            ))),
            _ => Err(FleetError::UnknownVersion(format!(
                "{spec} names {} versions: give more digits",
                matches.len()
            ))),
        }
    }

    /// Every scheme's state. A scheme whose record cannot be read (written
    /// by another version, damaged) is left out with a warning, so the
    /// others still converge.
    ///
    /// # Errors
    ///
    /// [`FleetError::Redis`].
    pub async fn states(&self) -> Result<BTreeMap<String, SchemeState>, FleetError> {
        let all: BTreeMap<String, String> = self
            .connection()
            .hgetall(self.key("state"))
            .await
            .map_err(|e| FleetError::redis("reading the fleet state", e))?;
        let mut states = BTreeMap::new();
        for (scheme, json) in all.iter().filter(|(field, _)| !field.ends_with(":rev")) {
            let rev = all
                .get(&format!("{scheme}:rev"))
                .and_then(|rev| rev.parse().ok());
            match (serde_json::from_str::<SchemeState>(json), rev) {
                (Ok(mut state), Some(rev)) => {
                    state.rev = rev;
                    states.insert(scheme.clone(), state);
                }
                (Err(e), _) => {
                    tracing::warn!(%scheme, error = %e, "unreadable fleet state left out");
                }
                (Ok(_), None) => {
                    tracing::warn!(%scheme, "fleet state without a revision left out");
                }
            }
        }
        Ok(states)
    }

    /// One scheme's state (the default before any change), with its
    /// revision as the compare-and-set sees it (the `SCHEME:rev` field).
    ///
    /// # Errors
    ///
    /// As [`Fleet::states`].
    pub async fn state(&self, scheme: &str) -> Result<SchemeState, FleetError> {
        let (json, rev): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(self.key("state"))
            .arg(scheme)
            .arg(format!("{scheme}:rev"))
            .query_async(&mut self.connection())
            .await
            .map_err(|e| FleetError::redis("reading the fleet state", e))?;
        let rev = match rev {
            Some(rev) => rev
                .parse()
                .map_err(|_| FleetError::Corrupt(format!("revision of {scheme}: {rev:?}")))?,
            None => 0,
        };
        let mut state: SchemeState = match json {
            Some(json) => serde_json::from_str(&json)
                .map_err(|e| FleetError::Corrupt(format!("state of {scheme}: {e}")))?,
            None => SchemeState::default(),
        };
        state.rev = rev;
        Ok(state)
    }

    /// Changes `scheme`'s state with `decide`, which sees the current state
    /// and returns the new one with its history entry (or `None` to change
    /// nothing). Retried while another change lands in between. Returns
    /// the state stored, or `None` when `decide` changed nothing.
    ///
    /// # Errors
    ///
    /// `decide`'s error; [`FleetError::Redis`].
    pub async fn update(
        &self,
        scheme: &str,
        mut decide: impl FnMut(&SchemeState) -> Result<Option<(SchemeState, HistoryEntry)>, FleetError>,
    ) -> Result<Option<SchemeState>, FleetError> {
        for attempt in 0..UPDATE_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(5 << attempt.min(6))).await;
            }
            let current = self.state(scheme).await?;
            let Some((mut next, entry)) = decide(&current)? else {
                return Ok(None);
            };
            next.rev = current.rev + 1;
            let state_json =
                serde_json::to_string(&next).map_err(|e| FleetError::Corrupt(e.to_string()))?;
            let entry_json =
                serde_json::to_string(&entry).map_err(|e| FleetError::Corrupt(e.to_string()))?;
            let applied: i64 = self
                .change
                .key(self.key("state"))
                .key(self.key("control"))
                .key(self.key("history"))
                .arg(scheme)
                .arg(current.rev)
                .arg(state_json)
                .arg(entry_json)
                .arg(HISTORY_KEPT)
                .invoke_async(&mut self.connection())
                .await
                .map_err(|e| FleetError::redis("changing the fleet state", e))?;
            if applied == 1 {
                return Ok(Some(next));
            }
        }
        Err(FleetError::Refused(format!(
            "the fleet state of {scheme} changed under {UPDATE_ATTEMPTS} attempts in a row: try again"
        )))
    }

    /// Appends `entry` to the history.
    ///
    /// # Errors
    ///
    /// [`FleetError::Redis`].
    pub async fn record(&self, entry: &HistoryEntry) -> Result<(), FleetError> {
        let json = serde_json::to_string(entry).map_err(|e| FleetError::Corrupt(e.to_string()))?;
        let _: String = redis::cmd("XADD")
            .arg(self.key("history"))
            .arg("MAXLEN")
            .arg("~")
            .arg(HISTORY_KEPT)
            .arg("*")
            .arg("entry")
            .arg(json)
            .query_async(&mut self.connection())
            .await
            .map_err(|e| FleetError::redis("recording history", e))?;
        Ok(())
    }

    /// The last `count` history entries, oldest first.
    ///
    /// # Errors
    ///
    /// [`FleetError::Redis`].
    pub async fn history(&self, count: usize) -> Result<Vec<HistoryEntry>, FleetError> {
        let mut entries: Vec<HistoryEntry> = self
            .newest(&self.key("history"), "entry", count)
            .await?
            .into_iter()
            .filter_map(|json| serde_json::from_str(&json).ok())
            .collect();
        entries.reverse();
        Ok(entries)
    }

    /// Stores one reporter's cumulative counts of a rollout (`reporter`
    /// names a server and its start, so a restarted server adds to what
    /// it counted before) and returns the fleet's totals: the sum over
    /// reporters. Storing absolute counts makes a repeated report (an
    /// answer lost on the way back) harmless.
    ///
    /// # Errors
    ///
    /// [`FleetError::Redis`].
    pub async fn report_trial(
        &self,
        rollout: &str,
        reporter: &str,
        counts: &TrialTotals,
    ) -> Result<TrialTotals, FleetError> {
        let key = self.key(&format!("trial:{rollout}"));
        let mut pipe = redis::pipe();
        pipe.atomic();
        let mut hset = redis::cmd("HSET");
        hset.arg(&key);
        for (field, value) in fields(counts) {
            hset.arg(format!("{reporter}|{field}")).arg(value);
        }
        pipe.add_command(hset).ignore();
        pipe.cmd("EXPIRE").arg(&key).arg(30 * 24 * 3600).ignore();
        pipe.cmd("HGETALL").arg(&key);
        let (all,): (BTreeMap<String, u64>,) = pipe
            .query_async(&mut self.connection())
            .await
            .map_err(|e| FleetError::redis("counting the trial", e))?;
        Ok(sum(&all))
    }

    /// A rollout's totals so far (the sum over its reporters).
    ///
    /// # Errors
    ///
    /// [`FleetError::Redis`].
    pub async fn trial_totals(&self, rollout: &str) -> Result<TrialTotals, FleetError> {
        let all: BTreeMap<String, u64> = self
            .connection()
            .hgetall(self.key(&format!("trial:{rollout}")))
            .await
            .map_err(|e| FleetError::redis("reading the trial", e))?;
        Ok(sum(&all))
    }

    /// Stores disagreements (the stream keeps about the last 1,000).
    ///
    /// # Errors
    ///
    /// [`FleetError::Redis`].
    pub async fn record_disagreements(
        &self,
        records: &[DisagreementRecord],
    ) -> Result<(), FleetError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for record in records {
            let json =
                serde_json::to_string(record).map_err(|e| FleetError::Corrupt(e.to_string()))?;
            pipe.cmd("XADD")
                .arg(self.key("disagreements"))
                .arg("MAXLEN")
                .arg("~")
                .arg(DISAGREEMENTS_KEPT)
                .arg("*")
                .arg("record")
                .arg(json)
                .ignore();
        }
        pipe.query_async::<()>(&mut self.connection())
            .await
            .map_err(|e| FleetError::redis("storing disagreements", e))
    }

    /// The last `count` disagreements, oldest first.
    ///
    /// # Errors
    ///
    /// [`FleetError::Redis`].
    pub async fn disagreements(&self, count: usize) -> Result<Vec<DisagreementRecord>, FleetError> {
        let mut records: Vec<DisagreementRecord> = self
            .newest(&self.key("disagreements"), "record", count)
            .await?
            .into_iter()
            .filter_map(|json| serde_json::from_str(&json).ok())
            .collect();
        records.reverse();
        Ok(records)
    }

    /// Stores a server's report and its heartbeat.
    ///
    /// # Errors
    ///
    /// [`FleetError::Redis`].
    pub async fn report(&self, report: &ServerReport) -> Result<(), FleetError> {
        let json = serde_json::to_string(report).map_err(|e| FleetError::Corrupt(e.to_string()))?;
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(self.key(&format!("server:{}", report.name)))
            .arg(json)
            .arg("EX")
            .arg(REPORT_TTL.as_secs())
            .ignore();
        pipe.cmd("ZADD")
            .arg(self.key("servers"))
            .arg(report.heartbeat_ms)
            .arg(&report.name)
            .ignore();
        let forgotten = report
            .heartbeat_ms
            .saturating_sub(u64::try_from(REPORT_TTL.as_millis()).unwrap_or(u64::MAX));
        pipe.cmd("ZREMRANGEBYSCORE")
            .arg(self.key("servers"))
            .arg("-inf")
            .arg(format!("({forgotten}"))
            .ignore();
        pipe.query_async::<()>(&mut self.connection())
            .await
            .map_err(|e| FleetError::redis("reporting", e))
    }

    /// The reports of the servers heard from in the last day, by name.
    ///
    /// # Errors
    ///
    /// [`FleetError::Redis`].
    pub async fn servers(&self) -> Result<Vec<ServerReport>, FleetError> {
        let mut connection = self.connection();
        let names: Vec<String> = connection
            .zrange(self.key("servers"), 0, -1)
            .await
            .map_err(|e| FleetError::redis("listing servers", e))?;
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = names
            .iter()
            .map(|name| self.key(&format!("server:{name}")))
            .collect();
        let reports: Vec<Option<String>> = redis::cmd("MGET")
            .arg(keys)
            .query_async(&mut connection)
            .await
            .map_err(|e| FleetError::redis("reading server reports", e))?;
        let mut reports: Vec<ServerReport> = reports
            .into_iter()
            .flatten()
            .filter_map(|json| serde_json::from_str(&json).ok())
            .collect();
        reports.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(reports)
    }

    /// The id of the control stream's last entry (`0-0` when empty): where
    /// a server that has just read the state starts following.
    ///
    /// # Errors
    ///
    /// [`FleetError::Redis`].
    pub async fn control_position(&self) -> Result<String, FleetError> {
        let last: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(self.key("control"))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut self.connection())
            .await
            .map_err(|e| FleetError::redis("reading the control stream", e))?;
        Ok(last
            .ids
            .first()
            .map_or_else(|| "0-0".to_string(), |entry| entry.id.clone()))
    }

    /// A connection of its own for [`Fleet::follow`], whose blocking read
    /// must not hold up other commands.
    ///
    /// # Errors
    ///
    /// [`FleetError::Redis`].
    pub async fn follower(&self) -> Result<MultiplexedConnection, FleetError> {
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(None);
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| FleetError::redis("connecting", e))
    }

    /// Waits up to `block` for control entries after `after`; returns the
    /// entries (id and fields), oldest first.
    ///
    /// # Errors
    ///
    /// [`FleetError::Redis`].
    pub async fn follow(
        &self,
        connection: &mut MultiplexedConnection,
        after: &str,
        block: Duration,
    ) -> Result<Vec<(String, BTreeMap<String, String>)>, FleetError> {
        let block_ms = u64::try_from(block.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut command = redis::cmd("XREAD");
        command
            .arg("BLOCK")
            .arg(block_ms)
            .arg("STREAMS")
            .arg(self.key("control"))
            .arg(after);
        let read = command.query_async::<Option<redis::streams::StreamReadReply>>(connection);
        let reply = tokio::time::timeout(block + Duration::from_secs(5), read)
            .await
            .map_err(|_| FleetError::Unreachable("no answer to XREAD".into()))?
            .map_err(|e| FleetError::redis("following the control stream", e))?;
        Ok(reply
            .into_iter()
            .flat_map(|reply| reply.keys)
            .flat_map(|key| key.ids)
            .map(|entry| {
                let fields = entry
                    .map
                    .iter()
                    .filter_map(|(field, value)| {
                        Some((field.clone(), redis::from_redis_value_ref(value).ok()?))
                    })
                    .collect();
                (entry.id, fields)
            })
            .collect())
    }

    /// The values of `field` in the newest `count` entries of `stream`,
    /// newest first.
    async fn newest(
        &self,
        stream: &str,
        field: &str,
        count: usize,
    ) -> Result<Vec<String>, FleetError> {
        let range: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(stream)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(count.max(1))
            .query_async(&mut self.connection())
            .await
            .map_err(|e| FleetError::redis("reading a stream", e))?;
        Ok(range
            .ids
            .iter()
            .filter_map(|entry| entry.get::<String>(field))
            .collect())
    }
}

/// The hash fields of [`TrialTotals`], in order.
const FIELDS: [&str; 6] = [
    "agreed",
    "disagreed",
    "errors",
    "served",
    "fell_back",
    "skipped",
];

fn fields(totals: &TrialTotals) -> [(&'static str, u64); 6] {
    [
        (FIELDS[0], totals.agreed),
        (FIELDS[1], totals.disagreed),
        (FIELDS[2], totals.errors),
        (FIELDS[3], totals.served),
        (FIELDS[4], totals.fell_back),
        (FIELDS[5], totals.skipped),
    ]
}

/// The totals of a trial hash (`REPORTER|FIELD` → count), summed over
/// reporters; fields this version does not know are ignored.
fn sum(all: &BTreeMap<String, u64>) -> TrialTotals {
    let mut values = [0u64; FIELDS.len()];
    for (name, value) in all {
        let field = name.rsplit_once('|').map_or(name.as_str(), |(_, f)| f);
        if let Some(index) = FIELDS.iter().position(|f| *f == field) {
            values[index] = values[index].saturating_add(*value);
        }
    }
    TrialTotals {
        agreed: values[0],
        disagreed: values[1],
        errors: values[2],
        served: values[3],
        fell_back: values[4],
        skipped: values[5],
    }
}
