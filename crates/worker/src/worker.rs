//! One worker: instances of the active modules, routing, verdicts.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use hotwasm_abi::{OPERATION, Scheme, VerifyResponse};
use hotwasm_jobs::{Job, Verdict};
use hotwasm_runtime::Instance;

use crate::{ModuleSet, SchemeModule};

static LIVE_INSTANCES: AtomicUsize = AtomicUsize::new(0);

/// Instances alive in this process, across all workers (a leak check for
/// hot swap: it must not grow with the number of swaps).
pub fn live_instances() -> usize {
    LIVE_INSTANCES.load(Ordering::Relaxed)
}

/// Runs jobs on instances of the modules active in a [`ModuleSet`]. Owned
/// by one thread; any number of workers share one set.
pub struct Worker {
    set: Arc<ModuleSet>,
    runtime: String,
    slots: BTreeMap<Scheme, Slot>,
}

/// The module a worker last used for a scheme, and its instance.
struct Slot {
    module: Arc<SchemeModule>,
    /// Created on first use and replaced after a trap.
    instance: Option<Counted>,
}

/// An instance, counted in [`live_instances`].
struct Counted(Box<dyn Instance>);

impl Counted {
    fn new(instance: Box<dyn Instance>) -> Counted {
        LIVE_INSTANCES.fetch_add(1, Ordering::Relaxed);
        Counted(instance)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        LIVE_INSTANCES.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Worker {
    /// A worker for `set`; instances are created on first use.
    pub fn new(set: &Arc<ModuleSet>) -> Worker {
        Worker {
            runtime: set.runtime().to_string(),
            set: Arc::clone(set),
            slots: BTreeMap::new(),
        }
    }

    /// Name of the runtime this worker runs on.
    pub fn runtime(&self) -> &str {
        &self.runtime
    }

    /// Verifies one job on the module active for its scheme when the call
    /// starts. Never fails: every problem becomes a verdict with
    /// `valid: false` and a reason.
    pub fn verify(&mut self, job: &Job) -> Verdict {
        let slot = match self.slot(job.scheme) {
            Some(slot) => slot,
            None => {
                return Verdict::error(
                    Some(job.id.clone()),
                    &self.runtime,
                    format!("no module serves {} jobs", job.scheme),
                );
            }
        };
        let module = Some(slot.module.id.clone());
        let instance = match &mut slot.instance {
            Some(instance) => instance,
            empty => match slot.module.compiled.instantiate() {
                Ok(instance) => empty.insert(Counted::new(instance)),
                Err(e) => {
                    return Verdict {
                        module,
                        ..Verdict::error(Some(job.id.clone()), &self.runtime, e.to_string())
                    };
                }
            },
        };
        let payload = hotwasm_abi::encode(&job.request());
        let started = Instant::now();
        let outcome = instance.0.call(OPERATION, &payload);
        let micros = started.elapsed().as_secs_f64() * 1e6;
        let (valid, reason) = match outcome {
            Ok(response) => match hotwasm_abi::decode::<VerifyResponse>(&response) {
                Ok(response) => (response.valid, response.reason),
                Err(e) => (
                    false,
                    Some(format!("module answered with a malformed response: {e}")),
                ),
            },
            Err(e) => {
                if e.poisons_instance() {
                    slot.instance = None;
                }
                (false, Some(e.to_string()))
            }
        };
        Verdict {
            id: Some(job.id.clone()),
            valid,
            reason,
            runtime: self.runtime.clone(),
            module,
            micros: (micros * 10.0).round() / 10.0,
        }
    }

    /// The slot for `scheme`, switched to the active module if that changed
    /// since the last call (the old instance is dropped here).
    fn slot(&mut self, scheme: Scheme) -> Option<&mut Slot> {
        let active = self.set.slot(scheme).load();
        let Some(active) = active.as_ref() else {
            self.slots.remove(&scheme);
            return None;
        };
        let slot = self.slots.entry(scheme).or_insert_with(|| Slot {
            module: Arc::clone(active),
            instance: None,
        });
        if !Arc::ptr_eq(&slot.module, active) {
            *slot = Slot {
                module: Arc::clone(active),
                instance: None,
            };
        }
        Some(slot)
    }
}
