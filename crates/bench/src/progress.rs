//! Progress reporting: a callback the sections call as they go, and a
//! terminal implementation with progress bars (indicatif).

use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Told what the bench is doing. Each section calls [`Progress::start`]
/// once with the number of steps it will take, [`Progress::step`] as each
/// step begins (naming the row it measures), and [`Progress::finish`] at
/// its end.
pub trait Progress {
    /// A section begins; it will take `steps` steps.
    fn start(&self, section: &str, steps: u64);
    /// Step `label` begins.
    fn step(&self, label: &str);
    /// The section is done.
    fn finish(&self);
}

/// Reports nothing (library use, tests).
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _section: &str, _steps: u64) {}
    fn step(&self, _label: &str) {}
    fn finish(&self) {}
}

/// One progress bar per section on standard error; hidden when standard
/// error is not a terminal.
#[derive(Debug, Default)]
pub struct Bars {
    bar: Mutex<Option<ProgressBar>>,
}

impl Bars {
    /// Bars drawn on standard error.
    pub fn new() -> Bars {
        Bars::default()
    }

    fn with_bar(&self, f: impl FnOnce(&mut Option<ProgressBar>)) {
        let mut bar = self.bar.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut bar);
    }
}

impl Progress for Bars {
    fn start(&self, section: &str, steps: u64) {
        self.with_bar(|slot| {
            let bar = ProgressBar::with_draw_target(Some(steps), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{prefix:>14.bold} [{bar:30}] {pos}/{len} {elapsed:>4} {wide_msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(section.to_string());
            bar.enable_steady_tick(Duration::from_millis(200));
            if let Some(old) = slot.replace(bar) {
                old.finish();
            }
        });
    }

    fn step(&self, label: &str) {
        self.with_bar(|slot| {
            if let Some(bar) = slot {
                bar.inc(1);
                bar.set_message(label.to_string());
            }
        });
    }

    fn finish(&self) {
        self.with_bar(|slot| {
            if let Some(bar) = slot.take() {
                bar.set_message("done");
                bar.finish();
            }
        });
    }
}
