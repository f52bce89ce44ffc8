//! One worker: instances of a module set, routing, verdicts.

use std::collections::BTreeMap;
use std::time::Instant;

use hotwasm_abi::{OPERATION, Scheme, VerifyResponse};
use hotwasm_jobs::{Job, Verdict};
use hotwasm_runtime::Instance;

use crate::{ModuleSet, SchemeModule};

/// Runs jobs on instances of a [`ModuleSet`]. Owned by one thread.
pub struct Worker {
    runtime: String,
    slots: BTreeMap<Scheme, Slot>,
}

struct Slot {
    module: SchemeModule,
    /// Created on first use and replaced after a trap.
    instance: Option<Box<dyn Instance>>,
}

impl Worker {
    /// A worker for `modules`; instances are created on first use.
    pub fn new(modules: &ModuleSet) -> Worker {
        let slots = Scheme::ALL
            .into_iter()
            .filter_map(|scheme| {
                modules.get(scheme).map(|module| {
                    (
                        scheme,
                        Slot {
                            module: module.clone(),
                            instance: None,
                        },
                    )
                })
            })
            .collect();
        Worker {
            runtime: modules.runtime().to_string(),
            slots,
        }
    }

    /// Name of the runtime this worker runs on.
    pub fn runtime(&self) -> &str {
        &self.runtime
    }

    /// Verifies one job. Never fails: every problem becomes a verdict with
    /// `valid: false` and a reason.
    pub fn verify(&mut self, job: &Job) -> Verdict {
        let Some(slot) = self.slots.get_mut(&job.scheme) else {
            return Verdict::error(
                Some(job.id.clone()),
                &self.runtime,
                format!("no module serves {} jobs", job.scheme),
            );
        };
        let module = Some(slot.module.id.clone());
        let instance = match &mut slot.instance {
            Some(instance) => instance,
            empty => match slot.module.compiled.instantiate() {
                Ok(instance) => empty.insert(instance),
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
        let outcome = instance.call(OPERATION, &payload);
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
}
