//! The worker pool: one OS thread per worker, each owning a
//! [`Worker`](hotwasm_worker::Worker) (instances are not `Send` on every
//! runtime), fed through one channel.
//!
//! A shadow trial's candidate runs off the delivered verdict's path: a
//! worker hands a sampled job and its delivered verdict to one of as many
//! shadow threads, which run at idle priority (`SCHED_IDLE`), so the
//! candidate takes only CPU time the serving workers leave; when they
//! fall behind, jobs are skipped (counted), never queued without bound.
//!
//! Jobs are handed over with a completion callback, so the caller decides
//! where a verdict goes (a batch being collected, a gRPC response, a ring)
//! without the pool knowing. Closing the pool lets queued jobs finish: a
//! graceful shutdown drains, it does not drop work.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use hotwasm_jobs::{Job, Verdict};
use hotwasm_worker::{ModuleSet, Worker};

/// What to do with a verdict.
type Done = Box<dyn FnOnce(Verdict) + Send>;

struct Task {
    job: Job,
    done: Done,
}

/// Sampled jobs waiting for a shadow thread; past this, jobs are skipped.
pub const SHADOW_QUEUE: usize = 1024;

/// A job and the verdict delivered for it, for the shadow candidate.
type Shadowed = (Job, Verdict);

/// A fixed set of worker threads over one [`ModuleSet`].
pub struct WorkerPool {
    sender: Option<Sender<Task>>,
    threads: Vec<JoinHandle<()>>,
    shadow_threads: Vec<JoinHandle<()>>,
    runtime: String,
    counters: Arc<Counters>,
}

/// What the pool has done since it started.
#[derive(Debug, Default)]
pub struct Counters {
    /// Verdicts produced.
    pub verdicts: AtomicU64,
    /// Of which `valid: true`.
    pub valid: AtomicU64,
}

impl WorkerPool {
    /// Starts `threads` workers (at least one) on `set`.
    ///
    /// # Errors
    ///
    /// The I/O error when a thread cannot be spawned.
    pub fn start(set: &Arc<ModuleSet>, threads: usize) -> std::io::Result<WorkerPool> {
        let (sender, receiver) = crossbeam_channel::unbounded::<Task>();
        let (shadow_sender, shadow_receiver) = crossbeam_channel::bounded::<Shadowed>(SHADOW_QUEUE);
        let counters = Arc::new(Counters::default());
        let handles = (0..threads.max(1))
            .map(|index| {
                let receiver = receiver.clone();
                let set = Arc::clone(set);
                let counters = Arc::clone(&counters);
                let shadow = shadow_sender.clone();
                std::thread::Builder::new()
                    .name(format!("hotwasm-worker-{index}"))
                    .stack_size(hotwasm_runtime::GUEST_THREAD_STACK_BYTES)
                    .spawn(move || work(&set, &receiver, &counters, &shadow))
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        drop(shadow_sender);
        let shadow_threads = (0..threads.max(1))
            .map(|index| {
                let receiver = shadow_receiver.clone();
                let set = Arc::clone(set);
                std::thread::Builder::new()
                    .name(format!("hotwasm-shadow-{index}"))
                    .stack_size(hotwasm_runtime::GUEST_THREAD_STACK_BYTES)
                    .spawn(move || shadow(&set, &receiver))
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(WorkerPool {
            sender: Some(sender),
            threads: handles,
            shadow_threads,
            runtime: set.runtime().to_string(),
            counters,
        })
    }

    /// Number of worker threads.
    pub fn threads(&self) -> usize {
        self.threads.len()
    }

    /// The runtime's name, for verdicts made outside a worker.
    pub fn runtime(&self) -> &str {
        &self.runtime
    }

    /// The pool's counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Queues `job`; `done` receives its verdict on a worker thread. Never
    /// blocks, so async tasks may call it: callers bound the work they hand
    /// over (the consumer keeps a fixed number of batches in flight, gRPC
    /// bounds message sizes). After [`WorkerPool::close`], `done` gets an
    /// error verdict at once.
    pub fn submit(&self, job: Job, done: impl FnOnce(Verdict) + Send + 'static) {
        let id = job.id.clone();
        let done = Box::new(done);
        if let Err(refused) = self.queue(Task { job, done }) {
            let verdict = Verdict::error(Some(id), &self.runtime, "the server is shutting down");
            (refused.done)(verdict);
        }
    }

    /// Jobs handed over and not yet taken by a worker.
    pub fn queued(&self) -> usize {
        self.sender.as_ref().map_or(0, Sender::len)
    }

    /// Like [`WorkerPool::submit`], but a pool that takes no more work
    /// (closed, or every worker thread gone) hands the job back instead of
    /// answering it: a queue consumer then leaves the job pending for
    /// another server rather than acknowledging an error verdict.
    ///
    /// # Errors
    ///
    /// The job, when the pool takes no more work.
    pub fn try_submit(
        &self,
        job: Job,
        done: impl FnOnce(Verdict) + Send + 'static,
    ) -> Result<(), Job> {
        self.queue(Task {
            job,
            done: Box::new(done),
        })
        .map_err(|task| task.job)
    }

    fn queue(&self, task: Task) -> Result<(), Task> {
        match &self.sender {
            Some(sender) => sender
                .send(task)
                .map_err(|crossbeam_channel::SendError(task)| task),
            None => Err(task),
        }
    }

    /// Verifies `job` on the pool and waits for its verdict without
    /// blocking the async runtime's threads on the verification itself.
    pub async fn verify(&self, job: Job) -> Verdict {
        let id = job.id.clone();
        let (sender, receiver) = tokio::sync::oneshot::channel();
        self.submit(job, move |verdict| {
            let _ = sender.send(verdict);
        });
        receiver.await.unwrap_or_else(|_| {
            Verdict::error(
                Some(id),
                &self.runtime,
                "the worker stopped before answering",
            )
        })
    }

    /// Stops taking jobs; queued ones still run. Threads exit when the
    /// queue is empty.
    pub fn close(&mut self) {
        self.sender = None;
    }

    /// Closes the pool and waits for every queued job to finish.
    pub fn shutdown(mut self) {
        self.close();
        for thread in self.threads.drain(..).chain(self.shadow_threads.drain(..)) {
            let _ = thread.join();
        }
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        self.close();
    }
}

fn work(
    set: &Arc<ModuleSet>,
    receiver: &Receiver<Task>,
    counters: &Counters,
    shadow: &Sender<Shadowed>,
) {
    let mut worker = Worker::new(set);
    for task in receiver {
        // A panic in a backend must cost one verdict, not the worker thread.
        let verdict = match std::panic::catch_unwind(AssertUnwindSafe(|| worker.verify(&task.job)))
        {
            Ok(verdict) => verdict,
            Err(_) => {
                worker = Worker::new(set);
                Verdict::error(
                    Some(task.job.id.clone()),
                    worker.runtime(),
                    "the worker panicked on this job; its instances were replaced",
                )
            }
        };
        counters.verdicts.fetch_add(1, Ordering::Relaxed);
        counters
            .valid
            .fetch_add(u64::from(verdict.valid), Ordering::Relaxed);
        // A shadow candidate runs after the verdict has gone on its way,
        // on a shadow thread.
        let trial = set
            .trial(task.job.scheme)
            .filter(|trial| trial.is_shadow() && trial.selects(&task.job.id));
        let delivered = trial.as_ref().map(|_| verdict.clone());
        (task.done)(verdict);
        if let (Some(trial), Some(delivered)) = (trial, delivered)
            && shadow.try_send((task.job, delivered)).is_err()
        {
            trial.counts.skipped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A shadow thread: at idle priority, runs the shadow candidate on the
/// jobs the workers hand over.
fn shadow(set: &Arc<ModuleSet>, receiver: &Receiver<Shadowed>) {
    idle_priority();
    let mut worker = Worker::beside(set);
    for (job, delivered) in receiver {
        if std::panic::catch_unwind(AssertUnwindSafe(|| worker.shadow(&job, &delivered))).is_err() {
            worker = Worker::beside(set);
        }
    }
}

/// Puts the calling thread in `SCHED_IDLE`: it runs only on CPU time no
/// other thread wants. Best effort: a failure leaves it at normal priority.
fn idle_priority() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: pid 0 is the calling thread; `param` is a valid pointer
        // for the duration of the call.
        let set = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &raw const param) };
        if set != 0 {
            tracing::debug!(
                error = %std::io::Error::last_os_error(),
                "shadow thread at normal priority"
            );
        }
    }
}
