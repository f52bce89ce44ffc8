//! Errors of compiling, instantiating and calling modules.

/// A module that could not be compiled or instantiated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// This build of hotwasm was made without the backend.
    #[error(
        "this build of hotwasm has no {runtime} runtime: rebuild with the cargo feature `{runtime}`"
    )]
    NotBuilt {
        /// The backend.
        runtime: &'static str,
    },
    /// The runtime itself could not be set up.
    #[error("cannot configure the {runtime} engine: {message}")]
    Engine {
        /// The backend.
        runtime: &'static str,
        /// What went wrong.
        message: String,
    },
    /// The bytes are not a module this runtime accepts.
    #[error("{runtime} cannot compile the module: {message}")]
    Compile {
        /// The backend.
        runtime: &'static str,
        /// The runtime's own explanation.
        message: String,
    },
    /// The module is valid wasm but not a waPC guest.
    #[error("not a waPC guest: {0}")]
    NotWapc(String),
    /// The runtime does not offer this operation.
    #[error("{runtime} does not support {what}")]
    Unsupported {
        /// The backend.
        runtime: &'static str,
        /// What it lacks.
        what: &'static str,
    },
    /// The module is larger than [`crate::Limits::max_module_bytes`];
    /// refused before any runtime parses it.
    #[error("the module is {bytes} bytes, over the limit of {limit} bytes")]
    ModuleTooLarge {
        /// Its size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// Instantiation plus `wapc_init` ran past
    /// [`crate::Limits::init_timeout`] and was stopped.
    #[error("{runtime}: starting the module took longer than its {} ms deadline", limit.as_millis())]
    InitDeadline {
        /// The backend.
        runtime: &'static str,
        /// The deadline.
        limit: std::time::Duration,
    },
    /// Instantiation failed: unsatisfied imports, a trapping start or
    /// `wapc_init`, resource exhaustion.
    #[error("{runtime} cannot instantiate the module: {message}")]
    Instantiate {
        /// The backend.
        runtime: &'static str,
        /// What went wrong.
        message: String,
    },
}

/// A waPC call that produced no response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The guest trapped; the instance must be replaced.
    #[error("guest trapped: {0}")]
    Trap(String),
    /// The guest reported an error through `__guest_error`.
    #[error("guest error: {0}")]
    Guest(String),
    /// The guest broke the waPC protocol (bad pointers, no response).
    #[error("waPC protocol violation: {0}")]
    Protocol(String),
    /// The request is too large to pass to a 32-bit guest.
    #[error("request of {0} bytes does not fit a wasm32 guest")]
    TooLarge(usize),
    /// The call ran past [`crate::Limits::call_timeout`] and was stopped;
    /// the instance must be replaced.
    #[error("module stopped: the call ran past its {} ms deadline", .0.as_millis())]
    Deadline(std::time::Duration),
    /// The guest answered, but not with a response of the operation's
    /// type; the instance may be kept.
    #[error("module answered with a malformed response: {0}")]
    Malformed(String),
}

impl CallError {
    /// A short name of the failure, for metrics labels: `trap`, `guest`,
    /// `protocol`, `too_large`, `deadline`, `malformed`.
    pub fn kind(&self) -> &'static str {
        match self {
            CallError::Trap(_) => "trap",
            CallError::Guest(_) => "guest",
            CallError::Protocol(_) => "protocol",
            CallError::TooLarge(_) => "too_large",
            CallError::Deadline(_) => "deadline",
            CallError::Malformed(_) => "malformed",
        }
    }

    /// Whether the instance that returned this error must be replaced.
    pub fn poisons_instance(&self) -> bool {
        matches!(
            self,
            CallError::Trap(_) | CallError::Protocol(_) | CallError::Deadline(_)
        )
    }
}
