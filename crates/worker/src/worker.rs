//! One worker: instances of the active modules, routing, verdicts.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use hotwasm_abi::Scheme;
use hotwasm_jobs::{Job, Verdict};
use hotwasm_runtime::Instance;

use crate::{ModuleSet, SchemeModule, Trial};

/// Runs jobs on instances of the modules active in a [`ModuleSet`]. Owned
/// by one thread; any number of workers share one set.
pub struct Worker {
    set: Arc<ModuleSet>,
    instances: Arc<AtomicUsize>,
    runtime: String,
    slots: BTreeMap<Scheme, Slots>,
    /// Instances of the candidates of trials ([`Trial`]), per scheme.
    candidates: BTreeMap<Scheme, Slot>,
    /// An instance whose memory grew past this is dropped after its call.
    keep_instance_bytes: usize,
    /// Counted in [`ModuleSet::workers`] (prewarming makes an instance
    /// for each): serving workers are, shadow workers not.
    counted: bool,
}

impl Drop for Worker {
    fn drop(&mut self) {
        if self.counted {
            self.set.worker_counter().fetch_sub(1, Ordering::Relaxed);
        }
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

impl Slot {
    /// A slot for `module`, with a warmed instance if one is waiting.
    fn fresh(module: &Arc<SchemeModule>, counter: &Arc<AtomicUsize>) -> Slot {
        Slot {
            module: Arc::clone(module),
            instance: module
                .take_warm()
                .map(|instance| Counted::new(instance, counter)),
        }
    }
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
        let mut worker = Worker::beside(set);
        worker.counted = true;
        worker
    }

    /// A worker that runs trial candidates beside the serving workers
    /// ([`Worker::shadow`]), not counted among them.
    pub fn beside(set: &Arc<ModuleSet>) -> Worker {
        Worker {
            counted: false,
            runtime: set.runtime().to_string(),
            instances: set.instance_counter(),
            set: Arc::clone(set),
            slots: BTreeMap::new(),
            candidates: BTreeMap::new(),
            keep_instance_bytes: set.runtime_handle().limits().keep_instance_bytes,
        }
    }

    /// Name of the runtime this worker runs on.
    pub fn runtime(&self) -> &str {
        &self.runtime
    }

    /// Verifies one job on the module active for its scheme when the call
    /// starts — or, when a canary [`Trial`] runs beside it and selects the
    /// job, on the candidate, falling back to the active module if the
    /// candidate's call fails. Never fails: every problem becomes a verdict
    /// with `valid: false` and a reason.
    pub fn verify(&mut self, job: &Job) -> Verdict {
        if let Some(trial) = self
            .set
            .trial(job.scheme)
            .filter(|trial| !trial.is_shadow() && trial.selects(&job.id))
        {
            let (verdict, failure) = self.run_candidate(&trial, job);
            if failure.is_none() {
                trial.counts.served.fetch_add(1, Ordering::Relaxed);
                return verdict;
            }
            trial.counts.errors.fetch_add(1, Ordering::Relaxed);
            trial.counts.fell_back.fetch_add(1, Ordering::Relaxed);
        }
        let Some(slot) = switch_to_active(&self.set, &mut self.slots, job.scheme, &self.instances)
        else {
            return Verdict::error(
                Some(job.id.clone()),
                &self.runtime,
                format!("no module serves {} jobs", job.scheme),
            );
        };
        run(slot, job, &self.instances, self.keep_instance_bytes).0
    }

    /// When a shadow [`Trial`] runs beside `job`'s scheme and selects it,
    /// runs the candidate on `job` and compares its verdict with
    /// `delivered` (the one the serving version gave, already handed
    /// over). Call after the delivered verdict has gone on its way.
    pub fn shadow(&mut self, job: &Job, delivered: &Verdict) {
        let Some(trial) = self
            .set
            .trial(job.scheme)
            .filter(|trial| trial.is_shadow() && trial.selects(&job.id))
        else {
            return;
        };
        let cpu_before = thread_cpu_time();
        let started = Instant::now();
        let (verdict, failure) = self.run_candidate(&trial, job);
        if failure == Some("deadline")
            && let (Some(before), Some(after)) = (cpu_before, thread_cpu_time())
            && after.saturating_sub(before) < started.elapsed() / 2
        {
            // Starved, not slow: this thread got less than half the call's
            // wall time (a shadow thread runs at idle priority), so the
            // candidate was not given its deadline's worth of time. Not
            // judged; a candidate that loops burns its deadline in CPU
            // once the machine has time for it, and is caught then.
            trial.counts.skipped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if failure.is_some() {
            trial.counts.errors.fetch_add(1, Ordering::Relaxed);
        }
        trial.compare(job, delivered, verdict);
    }

    /// Runs `job` on the trial's candidate, in this worker's instance of
    /// it; beside the verdict, the kind of failure when the call gave no
    /// answer.
    fn run_candidate(&mut self, trial: &Trial, job: &Job) -> (Verdict, Option<&'static str>) {
        let module = &trial.candidate;
        let slot = match self.candidates.entry(job.scheme) {
            std::collections::btree_map::Entry::Occupied(entry) => {
                let slot = entry.into_mut();
                if !Arc::ptr_eq(&slot.module, module) {
                    *slot = Slot::fresh(module, &self.instances);
                }
                slot
            }
            std::collections::btree_map::Entry::Vacant(entry) => {
                entry.insert(Slot::fresh(module, &self.instances))
            }
        };
        let (verdict, failure) = run(slot, job, &self.instances, self.keep_instance_bytes);
        trial.latency.record(verdict.micros);
        (verdict, failure)
    }
}

/// Runs `job` on the slot's module (instantiating it if needed); beside
/// the verdict, the kind of failure (`instantiate`, `trap`, `deadline`,
/// ...: [`crate::FAILURE_KINDS`]) when the call gave no answer.
fn run(
    slot: &mut Slot,
    job: &Job,
    counter: &Arc<AtomicUsize>,
    keep_instance_bytes: usize,
) -> (Verdict, Option<&'static str>) {
    let module = Some(slot.module.id.clone());
    // The module's own runtime: during a tiered activation a version
    // serves first from a faster-compiling tier than the worker's.
    let runtime = slot.module.compiled.runtime().name();
    let instance = match &mut slot.instance {
        Some(instance) => instance,
        empty => match slot.module.compiled.instantiate() {
            Ok(instance) => empty.insert(Counted::new(instance, counter)),
            Err(e) => {
                let reason = e.to_string();
                slot.module
                    .health
                    .failed(&slot.module.id, "instantiate", &reason);
                let verdict = Verdict {
                    module,
                    ..Verdict::error(Some(job.id.clone()), runtime, reason)
                };
                return (verdict, Some("instantiate"));
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
    if instance.0.memory_bytes() > keep_instance_bytes {
        slot.instance = None;
    }
    let (valid, reason, failure) = match outcome {
        Ok(response) => {
            slot.module.health.answered(response.valid);
            (response.valid, response.reason, None)
        }
        Err(e) => {
            if e.poisons_instance() {
                slot.instance = None;
            }
            let reason = e.to_string();
            slot.module
                .health
                .failed(&slot.module.id, e.kind(), &reason);
            (false, Some(reason), Some(e.kind()))
        }
    };
    let verdict = Verdict {
        id: Some(job.id.clone()),
        valid,
        reason: reason.map(bounded),
        runtime: runtime.to_string(),
        module,
        micros: (micros * 10.0).round() / 10.0,
    };
    (verdict, failure)
}

/// CPU time the calling thread has used, where the platform tells.
fn thread_cpu_time() -> Option<std::time::Duration> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec for the call to fill.
    let read = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &raw mut now) };
    (read == 0).then(|| {
        std::time::Duration::new(
            u64::try_from(now.tv_sec).unwrap_or(0),
            u32::try_from(now.tv_nsec).unwrap_or(0),
        )
    })
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
    let fresh = || Slot::fresh(active, counter);
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
