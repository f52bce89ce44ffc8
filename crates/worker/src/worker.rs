//! One worker: instances of the active modules, routing, verdicts.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use hotwasm_abi::Scheme;
use hotwasm_jobs::{Job, Verdict};
use hotwasm_runtime::Instance;

use crate::{ModuleSet, SchemeModule};

/// Runs jobs on instances of the modules active in a [`ModuleSet`]. Owned
/// by one thread; any number of workers share one set.
pub struct Worker {
    set: Arc<ModuleSet>,
    instances: Arc<AtomicUsize>,
    runtime: String,
    slots: BTreeMap<Scheme, Slots>,
    /// An instance whose memory grew past this is dropped after its call.
    keep_instance_bytes: usize,
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.set.worker_counter().fetch_sub(1, Ordering::Relaxed);
    }
}

/// The current slot of a scheme and the one it replaced. Keeping the
/// replaced instance makes swapping back (a rollback, or alternating two
/// versions) a pointer exchange instead of a new instance; it is dropped as
/// soon as a third version arrives, so a version no worker can return to is
/// freed.
struct Slots {
    current: Slot,
    replaced: Option<Slot>,
}

/// The module a worker last used for a scheme, and its instance.
struct Slot {
    module: Arc<SchemeModule>,
    /// Created on first use and replaced after a trap.
    instance: Option<Counted>,
}

/// An instance, counted in [`ModuleSet::live_instances`].
struct Counted(Box<dyn Instance>, Arc<AtomicUsize>);

impl Counted {
    fn new(instance: Box<dyn Instance>, counter: &Arc<AtomicUsize>) -> Counted {
        counter.fetch_add(1, Ordering::Relaxed);
        Counted(instance, Arc::clone(counter))
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.1.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Worker {
    /// A worker for `set`; instances are created on first use.
    pub fn new(set: &Arc<ModuleSet>) -> Worker {
        set.worker_counter().fetch_add(1, Ordering::Relaxed);
        Worker {
            runtime: set.runtime().to_string(),
            instances: set.instance_counter(),
            set: Arc::clone(set),
            slots: BTreeMap::new(),
            keep_instance_bytes: set.runtime_handle().limits().keep_instance_bytes,
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
        let slot = match switch_to_active(&self.set, &mut self.slots, job.scheme, &self.instances) {
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
                Ok(instance) => empty.insert(Counted::new(instance, &self.instances)),
                Err(e) => {
                    let reason = e.to_string();
                    slot.module
                        .health
                        .failed(&slot.module.id, "instantiate", &reason);
                    return Verdict {
                        module,
                        ..Verdict::error(Some(job.id.clone()), &self.runtime, reason)
                    };
                }
            },
        };
        let started = Instant::now();
        let outcome = hotwasm_runtime::verify(instance.0.as_mut(), &job.request());
        let seconds = started.elapsed().as_secs_f64();
        slot.module.health.timed(seconds);
        let micros = seconds * 1e6;
        // A guest that grew its memory gives it back with its instance; the
        // next call starts a fresh one.
        if instance.0.memory_bytes() > self.keep_instance_bytes {
            slot.instance = None;
        }
        let (valid, reason) = match outcome {
            Ok(response) => {
                slot.module.health.answered(response.valid);
                (response.valid, response.reason)
            }
            Err(e) => {
                if e.poisons_instance() {
                    slot.instance = None;
                }
                let reason = e.to_string();
                slot.module
                    .health
                    .failed(&slot.module.id, e.kind(), &reason);
                (false, Some(reason))
            }
        };
        Verdict {
            id: Some(job.id.clone()),
            valid,
            reason: reason.map(bounded),
            runtime: self.runtime.clone(),
            module,
            micros: (micros * 10.0).round() / 10.0,
        }
    }
}

/// Longest reason a verdict carries, in bytes: reasons are for people, and
/// a guest must not make verdicts large.
pub const MAX_REASON_BYTES: usize = 1024;

/// `reason` cut to [`MAX_REASON_BYTES`] at a character boundary.
fn bounded(mut reason: String) -> String {
    if reason.len() > MAX_REASON_BYTES {
        let mut end = MAX_REASON_BYTES - "…".len();
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
        reason.push('…');
    }
    reason
}

/// The slot for `scheme`, switched to the active module if that changed
/// since the last call.
fn switch_to_active<'a>(
    set: &ModuleSet,
    slots: &'a mut BTreeMap<Scheme, Slots>,
    scheme: Scheme,
    counter: &Arc<AtomicUsize>,
) -> Option<&'a mut Slot> {
    let active = set.slot(scheme).load();
    let Some(active) = active.as_ref() else {
        slots.remove(&scheme);
        return None;
    };
    // A new version starts with a warmed instance if the activator made
    // one, else with none (instantiated at its first call).
    let fresh = || Slot {
        module: Arc::clone(active),
        instance: active
            .take_warm()
            .map(|instance| Counted::new(instance, counter)),
    };
    let slots = slots.entry(scheme).or_insert_with(|| Slots {
        current: fresh(),
        replaced: None,
    });
    if !Arc::ptr_eq(&slots.current.module, active) {
        let back = slots
            .replaced
            .take()
            .filter(|slot| Arc::ptr_eq(&slot.module, active));
        let previous = std::mem::replace(&mut slots.current, back.unwrap_or_else(fresh));
        slots.replaced = Some(previous);
    }
    Some(&mut slots.current)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_cut_at_a_character_boundary() {
        assert_eq!(bounded("short".into()), "short");
        let long = "é".repeat(MAX_REASON_BYTES);
        let cut = bounded(long);
        assert!(cut.len() <= MAX_REASON_BYTES, "{}", cut.len());
        assert!(cut.ends_with('…'));
    }
}
