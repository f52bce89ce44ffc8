//! Trimming the job stream without ever dropping an unacknowledged entry.
//!
//! `XTRIM <stream> MINID <keep>` removes exactly the entries whose id is
//! below `keep`. For every consumer group on the stream, an entry is still
//! needed when it is
//!
//! - pending (delivered, not acknowledged): its id is at least the group's
//!   smallest pending id (`XPENDING` summary), or
//! - not yet delivered: its id is above the group's `last-delivered-id`
//!   (`XINFO GROUPS`), so at least that id's successor.
//!
//! `keep` is the minimum of those bounds over all groups, so every needed
//! entry has an id `>= keep` and survives. Computing `keep` and trimming
//! are two steps, but nothing that happens in between lowers the bound:
//! new entries get larger ids, a delivery moves an entry from "above
//! last-delivered" to "pending" with the same id (still `>= keep`), and an
//! acknowledgement only removes a need. A stream without any group is
//! never trimmed (nobody has said what is done). MAXLEN trimming is never
//! used: it drops by count, acknowledged or not.

use redis::aio::ConnectionManager;
use redis::streams::{StreamInfoGroupsReply, StreamPendingReply};

use super::entries::StreamId;
use super::shape_error;
use crate::QueueError;

/// The smallest id any group on `stream` still needs, or `None` when the
/// stream has no group.
///
/// # Errors
///
/// [`QueueError::Redis`] when `XINFO GROUPS` or `XPENDING` fails,
/// [`QueueError::UnexpectedReply`] when either answers with ids that do not
/// parse.
pub(crate) async fn keep_from(
    connection: &mut ConnectionManager,
    stream: &str,
) -> Result<Option<StreamId>, QueueError> {
    let groups: StreamInfoGroupsReply = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(stream)
        .query_async(connection)
        .await
        .map_err(|source| QueueError::Redis {
            command: "XINFO GROUPS",
            source,
        })?;
    let mut keep: Option<StreamId> = None;
    for group in &groups.groups {
        let last = StreamId::parse(&group.last_delivered_id).ok_or_else(|| {
            shape_error(
                "XINFO GROUPS",
                format!("last-delivered-id {:?}", group.last_delivered_id),
            )
        })?;
        let mut needed = last.successor();
        if group.pending > 0 {
            let summary: StreamPendingReply = redis::cmd("XPENDING")
                .arg(stream)
                .arg(&group.name)
                .query_async(connection)
                .await
                .map_err(|source| QueueError::Redis {
                    command: "XPENDING",
                    source,
                })?;
            if let StreamPendingReply::Data(data) = summary {
                let smallest = StreamId::parse(&data.start_id).ok_or_else(|| {
                    shape_error("XPENDING", format!("smallest id {:?}", data.start_id))
                })?;
                needed = needed.min(smallest);
            }
        }
        keep = Some(keep.map_or(needed, |keep| keep.min(needed)));
    }
    Ok(keep)
}

/// Trims `stream` to the entries some group still needs; returns how many
/// entries were removed.
///
/// # Errors
///
/// [`QueueError::Redis`] when a command fails; nothing is trimmed then.
pub(crate) async fn trim(
    connection: &mut ConnectionManager,
    stream: &str,
) -> Result<u64, QueueError> {
    let Some(keep) = keep_from(connection, stream).await? else {
        return Ok(0);
    };
    redis::cmd("XTRIM")
        .arg(stream)
        .arg("MINID")
        .arg(keep.to_string())
        .query_async(connection)
        .await
        .map_err(|source| QueueError::Redis {
            command: "XTRIM",
            source,
        })
}
