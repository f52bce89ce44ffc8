//! Results streams on Redis: one stream per client, holding its replies in
//! entries of one field, `reply` ([`Reply::encode`]).
//!
//! A client creates its stream before it submits and deletes it at the
//! end; servers append with `XADD ... NOMKSTREAM`, so a reply that comes
//! late (a redelivered job) never brings back a deleted stream nobody
//! reads. The client reads with `XREAD`, on a connection of its own while
//! it blocks.

use std::time::Duration;

use super::entries::{self, FIELD_REPLY, RawEntry};
use super::{PIPELINE_CHUNK, RedisQueue, block_millis, check_ids, shape_error};
use crate::{EntryError, Progress, QueueError, Reply, ResultsStreams};

impl RedisQueue {
    /// Deletes the stream `key`: a results stream its client has finished
    /// with, or the job and dead-letter streams of a run that used keys of
    /// its own.
    ///
    /// # Errors
    ///
    /// [`QueueError::Redis`] when `DEL` fails.
    pub async fn delete_stream(&self, key: &str) -> Result<(), QueueError> {
        self.query("DEL", redis::cmd("DEL").arg(key)).await
    }
}

impl ResultsStreams for RedisQueue {
    async fn create_stream(&self, stream: &str) -> Result<(), QueueError> {
        // XGROUP CREATE ... MKSTREAM makes an empty stream in one command
        // (the group itself is unused); it exists already when BUSYGROUP.
        let mut cmd = redis::cmd("XGROUP");
        cmd.arg("CREATE")
            .arg(stream)
            .arg("hotwasm-client")
            .arg("$")
            .arg("MKSTREAM");
        match self.query::<()>("XGROUP CREATE", &cmd).await {
            Err(QueueError::Redis { source, .. }) if source.code() == Some("BUSYGROUP") => Ok(()),
            other => other,
        }
    }

    async fn publish(&self, stream: &str, replies: &[Reply]) -> Result<(), QueueError> {
        for chunk in replies.chunks(PIPELINE_CHUNK) {
            let mut pipe = redis::pipe();
            for reply in chunk {
                // NOMKSTREAM: a stream its client deleted is not recreated.
                pipe.cmd("XADD")
                    .arg(stream)
                    .arg("NOMKSTREAM")
                    .arg("*")
                    .arg(FIELD_REPLY)
                    .arg(reply.encode());
            }
            let ids: Vec<Option<String>> = self.query_pipe("XADD", &pipe).await?;
            let dropped = ids.iter().filter(|id| id.is_none()).count();
            if dropped > 0 {
                tracing::debug!(stream, dropped, "results stream gone, replies dropped");
                break;
            }
        }
        Ok(())
    }

    async fn deliver(
        &self,
        stream: &str,
        consumer: &str,
        replies: &[(String, Reply)],
    ) -> Result<Vec<bool>, QueueError> {
        check_ids(replies.iter().map(|(id, _)| id.as_str()))?;
        let mut owned = Vec::with_capacity(replies.len());
        for chunk in replies.chunks(PIPELINE_CHUNK) {
            owned.extend(self.deliver_chunk(stream, consumer, chunk).await?);
        }
        Ok(owned)
    }

    async fn read_replies(
        &self,
        stream: &str,
        after: &str,
        max: usize,
        block: Duration,
    ) -> Result<(Vec<Result<Reply, EntryError>>, String), QueueError> {
        check_ids([after])?;
        if max == 0 {
            return Ok((Vec::new(), after.to_string()));
        }
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT").arg(max);
        if !block.is_zero() {
            cmd.arg("BLOCK").arg(block_millis(block));
        }
        cmd.arg("STREAMS").arg(stream).arg(after);
        let reply = self.read("XREAD", &cmd, block).await?;
        let entries = entries::parse_read_reply(reply).map_err(|e| shape_error("XREAD", e))?;
        let next = entries
            .last()
            .map_or_else(|| after.to_string(), |e| e.id.clone());
        Ok((entries.iter().map(RawEntry::reply).collect(), next))
    }

    async fn delete_stream(&self, stream: &str) -> Result<(), QueueError> {
        RedisQueue::delete_stream(self, stream).await
    }

    async fn load_progress(&self, stream: &str) -> Result<Option<Progress>, QueueError> {
        let mut cmd = redis::cmd("HGETALL");
        cmd.arg(progress_key(stream));
        let fields: std::collections::HashMap<String, String> = self.query("HGETALL", &cmd).await?;
        if fields.is_empty() {
            return Ok(None);
        }
        let number = |name: &str| {
            fields
                .get(name)
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| QueueError::UnexpectedReply {
                    command: "HGETALL",
                    detail: format!("progress of {stream} has no number {name:?}: {fields:?}"),
                })
        };
        Ok(Some(Progress {
            digest: fields.get("digest").cloned().unwrap_or_default(),
            jobs: number("jobs")?,
            submitted: number("submitted")?,
        }))
    }

    async fn save_progress(&self, stream: &str, progress: &Progress) -> Result<(), QueueError> {
        let mut cmd = redis::cmd("HSET");
        cmd.arg(progress_key(stream))
            .arg("digest")
            .arg(&progress.digest)
            .arg("jobs")
            .arg(progress.jobs)
            .arg("submitted")
            .arg(progress.submitted);
        self.query::<()>("HSET", &cmd).await
    }

    async fn delete_progress(&self, stream: &str) -> Result<(), QueueError> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(progress_key(stream));
        self.query::<()>("DEL", &cmd).await
    }
}

/// Where a resumable client's progress is kept: beside its results stream.
fn progress_key(stream: &str) -> String {
    format!("{stream}:progress")
}
