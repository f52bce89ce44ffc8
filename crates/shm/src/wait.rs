//! Waiting without a futex: spin briefly, then yield, then sleep in steps of
//! at most 200 µs, so a waiter notices progress well within a millisecond
//! without burning a core, and never waits past its deadline.

use std::time::{Duration, Instant};

/// Rounds of `spin_loop` hints (1, 2, 4, .. per round) before yielding.
const SPIN_ROUNDS: u32 = 7;
/// Rounds of `yield_now` before sleeping.
const YIELD_ROUNDS: u32 = 8;
/// First sleep step; doubles up to [`SLEEP_MAX`].
const SLEEP_MIN: Duration = Duration::from_micros(50);
/// Longest single sleep: bounds how late a waiter sees progress.
const SLEEP_MAX: Duration = Duration::from_micros(200);

/// One wait with a deadline, escalating from spinning to short sleeps.
#[derive(Debug)]
pub(crate) struct Backoff {
    start: Instant,
    /// `None` when the timeout is too large to represent: wait forever.
    deadline: Option<Instant>,
    round: u32,
}

impl Backoff {
    /// Starts a wait that gives up `timeout` from now.
    pub(crate) fn new(timeout: Duration) -> Backoff {
        let start = Instant::now();
        Backoff {
            start,
            deadline: start.checked_add(timeout),
            round: 0,
        }
    }

    /// Time since the wait started.
    pub(crate) fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Whether the deadline has passed. Checked also on paths that retry
    /// without waiting, so a cursor another process keeps moving cannot
    /// hold a caller past its timeout.
    pub(crate) fn expired(&self) -> bool {
        self.deadline
            .is_some_and(|deadline| Instant::now() >= deadline)
    }

    /// Waits one step. Returns `false`, without waiting, once the deadline
    /// has passed.
    pub(crate) fn snooze(&mut self) -> bool {
        let remaining = match self.deadline {
            Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Some(left),
                _ => return false,
            },
            None => None,
        };
        if self.round < SPIN_ROUNDS {
            for _ in 0..(1u32 << self.round) {
                std::hint::spin_loop();
            }
        } else if self.round < SPIN_ROUNDS + YIELD_ROUNDS {
            std::thread::yield_now();
        } else {
            let doublings = (self.round - SPIN_ROUNDS - YIELD_ROUNDS).min(8);
            let step = SLEEP_MIN.saturating_mul(1 << doublings).min(SLEEP_MAX);
            std::thread::sleep(remaining.map_or(step, |left| left.min(step)));
        }
        self.round = self.round.saturating_add(1);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_timeout_never_waits() {
        let mut wait = Backoff::new(Duration::ZERO);
        assert!(!wait.snooze());
    }

    #[test]
    fn huge_timeout_waits_forever_without_overflow() {
        let mut wait = Backoff::new(Duration::MAX);
        for _ in 0..(SPIN_ROUNDS + YIELD_ROUNDS + 2) {
            assert!(wait.snooze());
        }
    }

    #[test]
    fn short_timeout_eventually_expires() {
        let mut wait = Backoff::new(Duration::from_millis(2));
        while wait.snooze() {}
        assert!(wait.elapsed() >= Duration::from_millis(2));
    }
}
