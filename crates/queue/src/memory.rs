//! The in-process queue: the [`JobQueue`] and [`ResultsStreams`] contracts
//! inside one process, the embedded default when no Redis is configured.
//!
//! Everything lives under one mutex and every operation takes it once per
//! call, not per job, so a batch of a thousand jobs costs one lock. Waiting
//! is a [`Notify`], never polling. Entry ids are decimal numbers counting
//! from 1, in a job sequence and, separately, in each results stream; `"0"`
//! is the cursor before the first entry.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::{
    Delivery, EntryError, Envelope, JobQueue, Progress, QueueError, QueueStats, Reply,
    ResultsStreams,
};

/// The in-process queue. Cloning is cheap and shares the queue.
///
/// It keeps the same bookkeeping as the Redis consumer group: a delivered
/// job stays pending until acknowledged, [`reclaim`](JobQueue::reclaim)
/// hands out jobs idle longer than `min_idle` and dead-letters those
/// delivered too often. Acknowledged jobs are dropped at once (there is no
/// stream to trim).
///
/// ```
/// # use hotwasm_queue::{MemoryQueue, JobQueue, Envelope, ReplyTo};
/// # use std::time::Duration;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), hotwasm_queue::QueueError> {
/// let queue = MemoryQueue::new();
/// let job = Envelope { seq: 1, job: b"{}".to_vec(), reply: ReplyTo::Stream("r".into()) };
/// queue.submit(&[job]).await?;
/// let got = queue.fetch("server-1", 10, Duration::from_millis(10)).await?;
/// queue.ack(&[got[0].id.clone()]).await?;
/// assert_eq!(queue.stats().await?.pending, 0);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryQueue {
    shared: Arc<Shared>,
}

/// A job moved to the dead-letter list, as [`MemoryQueue::dead_letters`]
/// shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The entry id it had in the queue.
    pub id: String,
    /// How many times it was delivered.
    pub deliveries: u64,
    /// Why it was moved.
    pub reason: String,
    /// The envelope (or why the entry was not one).
    pub envelope: Result<Envelope, EntryError>,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    /// Woken when jobs arrive or the queue closes.
    jobs_arrived: Notify,
}

#[derive(Debug, Default)]
struct State {
    next_id: u64,
    ready: VecDeque<(u64, Envelope)>,
    pending: BTreeMap<u64, Pending>,
    dead: Vec<DeadLetter>,
    results: HashMap<String, Results>,
    /// Resumable clients' progress, by results stream.
    progress: HashMap<String, Progress>,
    closed: bool,
}

#[derive(Debug)]
struct Pending {
    envelope: Envelope,
    /// The consumer it was last delivered to.
    consumer: String,
    delivered_at: Instant,
    deliveries: u64,
}

#[derive(Debug, Default)]
struct Results {
    next_id: u64,
    entries: VecDeque<(u64, Reply)>,
    arrived: Arc<Notify>,
}

impl MemoryQueue {
    /// An empty queue.
    pub fn new() -> MemoryQueue {
        MemoryQueue::default()
    }

    /// Closes the queue: submits fail with [`QueueError::Closed`], fetches
    /// hand out what is left and then fail with it, waiting readers wake.
    pub fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        for results in state.results.values() {
            results.arrived.notify_waiters();
        }
        drop(state);
        self.shared.jobs_arrived.notify_waiters();
    }

    /// The jobs moved to the dead-letter list so far, oldest first.
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.lock().dead.clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind, never a
        // half-applied invariant worth refusing service over.
        self.shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Parses an id this queue handed out (`"0"` included).
fn parse_id(id: &str) -> Result<u64, QueueError> {
    id.parse()
        .map_err(|_| QueueError::InvalidId { id: id.to_string() })
}

impl JobQueue for MemoryQueue {
    async fn submit(&self, jobs: &[Envelope]) -> Result<(), QueueError> {
        let mut state = self.lock();
        if state.closed {
            return Err(QueueError::Closed);
        }
        state.ready.reserve(jobs.len());
        for job in jobs {
            state.next_id += 1;
            let id = state.next_id;
            state.ready.push_back((id, job.clone()));
        }
        drop(state);
        if !jobs.is_empty() {
            // One waiter is enough: a fetcher that leaves jobs behind wakes
            // the next one (see `fetch`).
            self.shared.jobs_arrived.notify_one();
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
        let deadline = tokio::time::Instant::now() + block;
        loop {
            let notified = self.shared.jobs_arrived.notified();
            tokio::pin!(notified);
            // Registered before looking, so a submit in between is not missed.
            notified.as_mut().enable();
            {
                let mut state = self.lock();
                if !state.ready.is_empty() {
                    let now = Instant::now();
                    let take = max.min(state.ready.len());
                    let mut out = Vec::with_capacity(take);
                    let State { ready, pending, .. } = &mut *state;
                    for (id, envelope) in ready.drain(..take) {
                        out.push(Delivery {
                            id: id.to_string(),
                            deliveries: 1,
                            envelope: Ok(envelope.clone()),
                        });
                        pending.insert(
                            id,
                            Pending {
                                envelope,
                                consumer: consumer.to_string(),
                                delivered_at: now,
                                deliveries: 1,
                            },
                        );
                    }
                    let more = !ready.is_empty();
                    drop(state);
                    if more {
                        self.shared.jobs_arrived.notify_one();
                    }
                    return Ok(out);
                }
                if state.closed {
                    return Err(QueueError::Closed);
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(Vec::new());
            }
        }
    }

    async fn reclaim(
        &self,
        consumer: &str,
        min_idle: Duration,
        max_deliveries: u64,
        max: usize,
    ) -> Result<Vec<Delivery>, QueueError> {
        let now = Instant::now();
        let mut state = self.lock();
        let State { pending, dead, .. } = &mut *state;
        let mut out = Vec::new();
        let mut dead_ids = Vec::new();
        for (id, entry) in pending.iter_mut() {
            if out.len() >= max {
                break;
            }
            if now.saturating_duration_since(entry.delivered_at) < min_idle {
                continue;
            }
            entry.deliveries += 1;
            entry.delivered_at = now;
            consumer.clone_into(&mut entry.consumer);
            if entry.deliveries > max_deliveries {
                dead_ids.push(*id);
            } else {
                out.push(Delivery {
                    id: id.to_string(),
                    deliveries: entry.deliveries,
                    envelope: Ok(entry.envelope.clone()),
                });
            }
        }
        for id in dead_ids {
            if let Some(entry) = pending.remove(&id) {
                dead.push(DeadLetter {
                    id: id.to_string(),
                    deliveries: entry.deliveries,
                    reason: too_many_deliveries(entry.deliveries, max_deliveries),
                    envelope: Ok(entry.envelope),
                });
            }
        }
        Ok(out)
    }

    async fn own_pending(
        &self,
        consumer: &str,
        after: &str,
        _max_deliveries: u64,
        max: usize,
    ) -> Result<Vec<Delivery>, QueueError> {
        let after = parse_id(after)?;
        let state = self.lock();
        Ok(state
            .pending
            .range(after + 1..)
            .filter(|(_, entry)| entry.consumer == consumer)
            .take(max)
            .map(|(id, entry)| Delivery {
                id: id.to_string(),
                deliveries: entry.deliveries,
                envelope: Ok(entry.envelope.clone()),
            })
            .collect())
    }

    async fn renew(&self, consumer: &str, ids: &[String]) -> Result<Vec<bool>, QueueError> {
        let parsed = ids
            .iter()
            .map(|id| parse_id(id))
            .collect::<Result<Vec<u64>, QueueError>>()?;
        let now = Instant::now();
        let mut state = self.lock();
        Ok(parsed
            .into_iter()
            .map(|id| match state.pending.get_mut(&id) {
                Some(entry) if entry.consumer == consumer => {
                    entry.delivered_at = now;
                    true
                }
                _ => false,
            })
            .collect())
    }

    async fn ack(&self, ids: &[String]) -> Result<(), QueueError> {
        let parsed = ids
            .iter()
            .map(|id| parse_id(id))
            .collect::<Result<Vec<u64>, QueueError>>()?;
        let mut state = self.lock();
        for id in parsed {
            state.pending.remove(&id);
        }
        Ok(())
    }

    async fn dead_letter(&self, delivery: &Delivery, reason: &str) -> Result<(), QueueError> {
        let id = parse_id(&delivery.id)?;
        let mut state = self.lock();
        state.pending.remove(&id);
        state.dead.push(DeadLetter {
            id: delivery.id.clone(),
            deliveries: delivery.deliveries,
            reason: reason.to_string(),
            envelope: delivery.envelope.clone(),
        });
        Ok(())
    }

    async fn stats(&self) -> Result<QueueStats, QueueError> {
        let state = self.lock();
        Ok(QueueStats {
            length: (state.ready.len() + state.pending.len()) as u64,
            pending: state.pending.len() as u64,
            dead_letters: state.dead.len() as u64,
        })
    }
}

impl ResultsStreams for MemoryQueue {
    async fn load_progress(&self, stream: &str) -> Result<Option<Progress>, QueueError> {
        Ok(self.lock().progress.get(stream).cloned())
    }

    async fn save_progress(&self, stream: &str, progress: &Progress) -> Result<(), QueueError> {
        self.lock()
            .progress
            .insert(stream.to_string(), progress.clone());
        Ok(())
    }

    async fn delete_progress(&self, stream: &str) -> Result<(), QueueError> {
        self.lock().progress.remove(stream);
        Ok(())
    }

    async fn create_stream(&self, stream: &str) -> Result<(), QueueError> {
        self.lock().results.entry(stream.to_string()).or_default();
        Ok(())
    }

    async fn deliver(
        &self,
        stream: &str,
        consumer: &str,
        replies: &[(String, Reply)],
    ) -> Result<Vec<bool>, QueueError> {
        let ids = replies
            .iter()
            .map(|(id, _)| parse_id(id))
            .collect::<Result<Vec<u64>, QueueError>>()?;
        let mut state = self.lock();
        let State {
            pending, results, ..
        } = &mut *state;
        let mut stream = results.get_mut(stream);
        let mut owned = Vec::with_capacity(ids.len());
        for (id, (_, reply)) in ids.into_iter().zip(replies) {
            let mine = pending
                .get(&id)
                .is_some_and(|entry| entry.consumer == consumer);
            if mine {
                pending.remove(&id);
                if let Some(results) = stream.as_deref_mut() {
                    results.next_id += 1;
                    let next = results.next_id;
                    results.entries.push_back((next, reply.clone()));
                }
            }
            owned.push(mine);
        }
        let arrived = stream.map(|results| Arc::clone(&results.arrived));
        drop(state);
        if let Some(arrived) = arrived {
            arrived.notify_waiters();
        }
        Ok(owned)
    }

    async fn publish(&self, stream: &str, replies: &[Reply]) -> Result<(), QueueError> {
        let mut state = self.lock();
        let Some(results) = state.results.get_mut(stream) else {
            tracing::debug!(
                stream,
                replies = replies.len(),
                "results stream gone, replies dropped"
            );
            return Ok(());
        };
        results.entries.reserve(replies.len());
        for reply in replies {
            results.next_id += 1;
            let id = results.next_id;
            results.entries.push_back((id, reply.clone()));
        }
        let arrived = Arc::clone(&results.arrived);
        drop(state);
        arrived.notify_waiters();
        Ok(())
    }

    async fn read_replies(
        &self,
        stream: &str,
        after: &str,
        max: usize,
        block: Duration,
    ) -> Result<(Vec<Result<Reply, EntryError>>, String), QueueError> {
        let after_id = parse_id(after)?;
        if max == 0 {
            return Ok((Vec::new(), after.to_string()));
        }
        let deadline = tokio::time::Instant::now() + block;
        loop {
            let arrived = {
                let mut state = self.lock();
                let closed = state.closed;
                let results = state.results.entry(stream.to_string()).or_default();
                // Ids are consecutive, so the first one after the cursor is
                // found by arithmetic, not by a scan.
                let first = results.entries.front().map_or(0, |(id, _)| *id);
                let skip = after_id.saturating_add(1).saturating_sub(first.max(1)) as usize;
                let batch: Vec<Result<Reply, EntryError>> = results
                    .entries
                    .iter()
                    .skip(skip)
                    .take(max)
                    .map(|(_, reply)| Ok(reply.clone()))
                    .collect();
                if !batch.is_empty() {
                    let last = results
                        .entries
                        .get(skip + batch.len() - 1)
                        .map_or(after_id, |(id, _)| *id);
                    return Ok((batch, last.to_string()));
                }
                if closed {
                    return Err(QueueError::Closed);
                }
                Arc::clone(&results.arrived)
            };
            let notified = arrived.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // Look again now that the waiter is registered: a publish may
            // have come in between.
            let has_new = {
                let state = self.lock();
                state
                    .results
                    .get(stream)
                    .and_then(|r| r.entries.back())
                    .is_some_and(|(id, _)| *id > after_id)
                    || state.closed
            };
            if has_new {
                continue;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok((Vec::new(), after.to_string()));
            }
        }
    }

    async fn delete_stream(&self, stream: &str) -> Result<(), QueueError> {
        let removed = self.lock().results.remove(stream);
        if let Some(results) = removed {
            results.arrived.notify_waiters();
        }
        Ok(())
    }
}

/// The dead-letter reason of a job delivered too often (shared with the
/// Redis queue so both say the same).
pub(crate) fn too_many_deliveries(deliveries: u64, max_deliveries: u64) -> String {
    format!(
        "delivered {deliveries} times, more than the limit of {max_deliveries} \
         (every server that took it died or gave up before acknowledging it)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ReplyTo;

    fn envelope(seq: u64) -> Envelope {
        Envelope {
            seq,
            job: format!("{{\"id\":\"{seq}\"}}").into_bytes(),
            reply: ReplyTo::Stream("results".into()),
        }
    }

    #[tokio::test]
    async fn fetch_waits_for_a_submit_from_another_task() {
        let queue = MemoryQueue::new();
        let submitter = queue.clone();
        let handle = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            submitter.submit(&[envelope(7)]).await
        });
        let got = queue.fetch("c", 10, Duration::from_secs(30)).await.unwrap();
        handle.await.unwrap().unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].envelope.as_ref().unwrap().seq, 7);
    }

    #[tokio::test]
    async fn closed_queue_drains_then_refuses() {
        let queue = MemoryQueue::new();
        queue.submit(&[envelope(1)]).await.unwrap();
        queue.close();
        assert!(matches!(
            queue.submit(&[envelope(2)]).await,
            Err(QueueError::Closed)
        ));
        assert_eq!(queue.fetch("c", 10, Duration::ZERO).await.unwrap().len(), 1);
        assert!(matches!(
            queue.fetch("c", 10, Duration::from_secs(30)).await,
            Err(QueueError::Closed)
        ));
    }

    #[tokio::test]
    async fn bad_ids_are_refused_and_nothing_is_acked() {
        let queue = MemoryQueue::new();
        queue.submit(&[envelope(1)]).await.unwrap();
        let got = queue.fetch("c", 10, Duration::ZERO).await.unwrap();
        let err = queue
            .ack(&[got[0].id.clone(), "nope".into()])
            .await
            .unwrap_err();
        assert!(matches!(err, QueueError::InvalidId { .. }), "{err}");
        assert_eq!(queue.stats().await.unwrap().pending, 1);
    }
}
