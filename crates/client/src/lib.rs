//! The hotwasm client: submits signed jobs to servers through a queue,
//! collects the verdicts from a shared-memory ring (servers on this host)
//! or a results stream (servers anywhere), and checks them; administers
//! running servers over gRPC.
//!
//! # Layout
//!
//! - [`jobs`]: jobs to submit, generated on all cores or read from a file.
//! - [`submit`]: jobs in, verdicts back, one [`Summary`] (`submit.rs`).
//! - [`summary`]: counts, mismatches, latency percentiles, per-server work.
//! - [`admin`]: module administration and statistics of a running server over gRPC.

pub mod admin;
pub mod jobs;
pub mod submit;
pub mod summary;

pub use submit::{Outgoing, ResultsVia, SubmitOptions};
pub use summary::Summary;

/// A submission that could not run. Wrong or missing verdicts are not
/// errors: they are in the [`Summary`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The queue refused the jobs or could not be reached.
    #[error(transparent)]
    Queue(#[from] hotwasm_queue::QueueError),
    /// The shared-memory results ring could not be created.
    #[error("shared-memory results ring: {0}")]
    Shm(#[from] hotwasm_shm::ShmError),
    /// A resumable run needs its verdicts in a results stream: a ring dies
    /// with its client.
    #[error("a resumable run (--session) needs --results redis: a ring dies with its client")]
    ResumeNeedsStream,
    /// The session was started with other jobs than these.
    #[error(
        "session {session} was started with other jobs ({jobs} jobs, digest {digest}); \
         resume it with the same input, or pick another --session"
    )]
    SessionMismatch {
        /// The session's name.
        session: String,
        /// How many jobs it was started with.
        jobs: u64,
        /// Their digest.
        digest: String,
    },
}
