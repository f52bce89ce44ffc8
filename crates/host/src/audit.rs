//! The audit trail of module administration: who did what to which module,
//! and what came of it — every load, activation and rollback, refusals
//! included, whichever door it came through (gRPC, a watched directory, the
//! local CLI).
//!
//! Each entry is logged at `info` on the `audit` target (on by default:
//! `HOTWASM_LOG` set to something else turns it off with the rest), and,
//! with a file, appended to it as one JSON line (created 0600).

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use std::sync::Mutex;

/// One administrative action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry<'a> {
    /// Who: an admin token's name, `unauthenticated`, `watch`, a local
    /// user.
    pub who: &'a str,
    /// Through what: `grpc 127.0.0.1:50412`, `watch /srv/modules`, `cli`.
    pub via: &'a str,
    /// `load`, `activate`, `rollback`.
    pub action: &'a str,
    /// What it acted on: a module name, `name@hash`, a file.
    pub target: &'a str,
    /// `Ok` with what changed, or `Err` with why nothing did.
    pub outcome: Result<String, String>,
}

/// Where audit entries go.
#[derive(Debug, Default)]
pub struct AuditLog {
    file: Option<Mutex<std::fs::File>>,
    /// Entries so far by action and result, for metrics.
    counts: Mutex<std::collections::BTreeMap<(String, &'static str), u64>>,
}

impl AuditLog {
    /// Entries go to the log only.
    pub fn log_only() -> AuditLog {
        AuditLog::default()
    }

    /// Entries also go to `path`, appended (created 0600 if missing).
    ///
    /// # Errors
    ///
    /// The file cannot be opened for appending.
    pub fn to_file(path: &Path) -> std::io::Result<AuditLog> {
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)?;
        Ok(AuditLog {
            file: Some(Mutex::new(file)),
            counts: Mutex::default(),
        })
    }

    /// The trail of a registry directory's local administration (`hotwasm
    /// modules load|activate|rollback` without `--server`):
    /// `<dir>/audit.jsonl`.
    ///
    /// # Errors
    ///
    /// As [`AuditLog::to_file`].
    pub fn of_registry(dir: &Path) -> std::io::Result<AuditLog> {
        AuditLog::to_file(&dir.join(Self::REGISTRY_FILE))
    }

    /// The file name of a registry's own trail.
    pub const REGISTRY_FILE: &'static str = "audit.jsonl";

    /// Who this process acts as, for [`AuditEntry::who`]: `uid N`, the
    /// effective user id (the kernel's word, unlike `$USER`).
    pub fn local_user() -> String {
        // SAFETY: geteuid has no preconditions and cannot fail.
        format!("uid {}", unsafe { libc::geteuid() })
    }

    /// How many entries were recorded, by action and result (`ok` or
    /// `refused`).
    pub fn counts(&self) -> Vec<(String, &'static str, u64)> {
        self.counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .map(|((action, result), n)| (action.clone(), *result, *n))
            .collect()
    }

    /// Records `entry`.
    pub fn record(&self, entry: &AuditEntry<'_>) {
        let (result, detail) = match &entry.outcome {
            Ok(detail) => ("ok", detail.as_str()),
            Err(reason) => ("refused", reason.as_str()),
        };
        *self
            .counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .entry((entry.action.to_string(), result))
            .or_default() += 1;
        tracing::info!(
            target: "audit",
            who = entry.who,
            via = entry.via,
            action = entry.action,
            target = entry.target,
            result,
            detail,
            "module administration"
        );
        let Some(file) = &self.file else { return };
        let line = serde_json::json!({
            "at": humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            "who": entry.who,
            "via": entry.via,
            "action": entry.action,
            "target": entry.target,
            "result": result,
            "detail": detail,
        });
        let mut file = file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // One write per line, so concurrent entries never interleave.
        if let Err(e) = file.write_all(format!("{line}\n").as_bytes()) {
            tracing::error!("writing the audit log failed: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn entries_are_appended_as_json_lines_to_an_owner_only_file() {
        use std::os::unix::fs::MetadataExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::to_file(&path).unwrap();
        log.record(&AuditEntry {
            who: "alice",
            via: "grpc 127.0.0.1:1",
            action: "load",
            target: "schnorr",
            outcome: Ok("schnorr@abcd active".into()),
        });
        log.record(&AuditEntry {
            who: "unauthenticated",
            via: "grpc 127.0.0.1:2",
            action: "activate",
            target: "schnorr@ffff",
            outcome: Err("no admin token".into()),
        });
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["who"], "alice");
        assert_eq!(lines[0]["result"], "ok");
        assert_eq!(lines[1]["result"], "refused");
        assert_eq!(lines[1]["detail"], "no admin token");
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
    }
}
