//! A duration flag given in seconds (`--reclaim-after 2.5`) or with a unit
//! (`100ms`, `30s`), parsed so that `inf`, `NaN` and negative numbers are
//! clap errors, not a panic in `Duration::from_secs_f64`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A non-negative, finite number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seconds(pub Duration);

impl Seconds {
    /// The duration, at least `floor`.
    pub fn at_least(self, floor: Duration) -> Duration {
        self.0.max(floor)
    }
}

impl FromStr for Seconds {
    type Err = String;

    fn from_str(text: &str) -> Result<Seconds, String> {
        let refused = || {
            format!(
                "{text:?} is not a duration: give seconds as a finite number, 0 or more \
                 (e.g. 2.5), or a number with a unit (e.g. 100ms, 30s)"
            )
        };
        let text = text.trim();
        // A number is seconds; anything else must carry a unit.
        let Ok(value) = text.parse::<f64>() else {
            return humantime::parse_duration(text)
                .map(Seconds)
                .map_err(|_| refused());
        };
        // try_from_secs_f64 refuses NaN, negative numbers and anything
        // beyond Duration::MAX (infinity included).
        Duration::try_from_secs_f64(value)
            .map(Seconds)
            .map_err(|_| refused())
    }
}

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inf_nan_and_negative_seconds_are_errors_not_panics() {
        for bad in [
            "inf", "-inf", "infinity", "NaN", "-1", "-0.5", "1e300", "", "soon",
        ] {
            let error = bad.parse::<Seconds>().expect_err(bad);
            assert!(
                error.contains("is not a duration: give seconds"),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn durations_with_units_parse_too() {
        assert_eq!("100ms".parse(), Ok(Seconds(Duration::from_millis(100))));
        assert_eq!("1m 30s".parse(), Ok(Seconds(Duration::from_secs(90))));
    }

    #[test]
    fn finite_seconds_parse_and_print_back() {
        assert_eq!("2.5".parse(), Ok(Seconds(Duration::from_millis(2500))));
        assert_eq!("0".parse(), Ok(Seconds(Duration::ZERO)));
        assert_eq!(Seconds(Duration::from_secs(60)).to_string(), "60");
        assert_eq!(
            Seconds(Duration::ZERO).at_least(Duration::from_millis(1)),
            Duration::from_millis(1)
        );
    }
}
