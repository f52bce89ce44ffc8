//! Summary statistics of measured samples, shared by the client's summary,
//! the evaluation report and the benches, so every figure is computed one way.

/// The `q` quantile (`0.0..=1.0`) of values sorted ascending, by nearest
/// rank: the smallest value with at least `q` of the values at or below it
/// (`q = 0.5` of `1..=100` is 50, `q = 0.99` is 99, `q = 1.0` the maximum).
/// A `q` outside `0.0..=1.0` is clamped to it.
///
/// `None` when there are no values: an empty sample has no percentile, and
/// each caller says how it shows one (the client's summary shows 0, the
/// report leaves the cell blank).
///
/// ```
/// use hotwasm_jobs::stats::percentile;
/// let sorted: Vec<f64> = (1..=100).map(f64::from).collect();
/// assert_eq!(percentile(&sorted, 0.99), Some(99.0));
/// assert_eq!(percentile(&[], 0.5), None);
/// ```
pub fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    // `as` saturates: NaN becomes 0, then the clamp picks the first value.
    let rank = (q.clamp(0.0, 1.0) * n as f64).ceil() as usize;
    sorted.get(rank.clamp(1, n) - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.5), Some(50.0));
        assert_eq!(percentile(&values, 0.99), Some(99.0));
        assert_eq!(percentile(&values, 1.0), Some(100.0));
        assert_eq!(percentile(&values, 0.0), Some(1.0));
        assert_eq!(percentile(&[3.0], 0.99), Some(3.0));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn out_of_range_quantiles_are_clamped() {
        let values = [1.0, 2.0, 3.0];
        assert_eq!(percentile(&values, -1.0), Some(1.0));
        assert_eq!(percentile(&values, 7.0), Some(3.0));
        assert_eq!(percentile(&values, f64::NAN), Some(1.0));
    }
}
