//! The worker pool: one OS thread per worker, each owning a
//! [`Worker`](hotwasm_worker::Worker) (instances are not `Send` on every
//! runtime), fed through one channel.
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

/// A fixed set of worker threads over one [`ModuleSet`].
pub struct WorkerPool {
    sender: Option<Sender<Task>>,
    threads: Vec<JoinHandle<()>>,
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
        let counters = Arc::new(Counters::default());
        let handles = (0..threads.max(1))
            .map(|index| {
                let receiver = receiver.clone();
                let set = Arc::clone(set);
                let counters = Arc::clone(&counters);
                std::thread::Builder::new()
                    .name(format!("hotwasm-worker-{index}"))
                    .stack_size(hotwasm_runtime::GUEST_THREAD_STACK_BYTES)
                    .spawn(move || work(&set, &receiver, &counters))
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(WorkerPool {
            sender: Some(sender),
            threads: handles,
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
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        self.close();
    }
}

fn work(set: &Arc<ModuleSet>, receiver: &Receiver<Task>, counters: &Counters) {
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
        // A shadow candidate runs after the verdict has gone on its way.
        let shadowed = set
            .trial(task.job.scheme)
            .is_some_and(|trial| trial.is_shadow())
            .then(|| verdict.clone());
        (task.done)(verdict);
        if let Some(delivered) = shadowed
            && std::panic::catch_unwind(AssertUnwindSafe(|| {
                worker.shadow(&task.job, &delivered);
            }))
            .is_err()
        {
            worker = Worker::new(set);
        }
    }
}
