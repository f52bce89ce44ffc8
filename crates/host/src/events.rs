//! The event every commit publishes: which module now serves a scheme,
//! which one it replaced, and why.
//!
//! Subscribers get their own channel ([`crate::ModuleHost::subscribe`]);
//! a commit sends to every live one and forgets the ones dropped. The
//! channels are unbounded: a subscriber drains its receiver or drops it.

use std::sync::Mutex;
use std::time::SystemTime;

use crossbeam_channel::{Receiver, Sender};
use hotwasm_abi::Scheme;

/// Why a module became the one serving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// Chosen when the host started.
    Startup,
    /// Loaded from `source` (`grpc`, a file path) and activated.
    Load {
        /// Where the bytes came from.
        source: String,
    },
    /// A stored or built-in version activated by name.
    Activate,
    /// The version active before, restored.
    Rollback,
    /// Swapped in directly by a tool (`hotwasm verify --swap-every`,
    /// `hotwasm demo`, the benchmark).
    Swap,
    /// Tiered activation: the same version, now compiled by the host's own
    /// runtime, replaces the build of the faster-compiling tier it started
    /// serving from ([`crate::HostConfig::first_tier`]).
    TierUp {
        /// The runtime whose build it replaces (`wasmtime-winch`).
        from_runtime: &'static str,
    },
}

/// One commit: `to` serves `scheme` from the next call on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activation {
    /// The scheme whose module changed.
    pub scheme: Scheme,
    /// The module id (`name@hash`) serving before, if any.
    pub from: Option<String>,
    /// The module id serving now.
    pub to: String,
    /// Why.
    pub cause: Cause,
    /// When the pointer was stored.
    pub at: SystemTime,
}

/// The live subscribers.
#[derive(Default)]
pub(crate) struct Subscribers(Mutex<Vec<Sender<Activation>>>);

impl Subscribers {
    pub(crate) fn subscribe(&self) -> Receiver<Activation> {
        let (sender, receiver) = crossbeam_channel::unbounded();
        self.lock().push(sender);
        receiver
    }

    pub(crate) fn publish(&self, event: &Activation) {
        self.lock()
            .retain(|subscriber| subscriber.send(event.clone()).is_ok());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Sender<Activation>>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
