//! The flags that bound what a guest module may use: `--call-timeout`,
//! `--init-timeout`, `--max-memory`, `--max-response-bytes`,
//! `--max-module-bytes`. Shared by every command that runs modules.

use std::time::Duration;

use hotwasm_runtime::Limits;

use crate::command::seconds::Seconds;

/// Bounds on every guest call, start and module.
#[derive(Debug, Clone, clap::Args)]
pub struct LimitArgs {
    /// Longest a module may take for one job before it is stopped and the
    /// job gets an error verdict (seconds, or with a unit: 100ms, 2s).
    #[arg(long, default_value = "100ms", value_parser = duration, env = "HOTWASM_CALL_TIMEOUT")]
    pub call_timeout: Duration,
    /// Longest a module's start (instantiation and `wapc_init`) may take.
    #[arg(long, default_value = "1s", value_parser = duration, env = "HOTWASM_INIT_TIMEOUT")]
    pub init_timeout: Duration,
    /// Largest linear memory of one module instance (e.g. 64MiB); growing
    /// past it fails inside the guest.
    #[arg(long, default_value = "64MiB", value_parser = bytes, env = "HOTWASM_MAX_MEMORY")]
    pub max_memory: usize,
    /// Largest response a module may return for one job (e.g. 64KiB).
    #[arg(long, default_value = "64KiB", value_parser = bytes)]
    pub max_response_bytes: usize,
    /// Largest module accepted (e.g. 8MiB), refused before it is compiled.
    #[arg(long, default_value = "8MiB", value_parser = bytes, env = "HOTWASM_MAX_MODULE_BYTES")]
    pub max_module_bytes: usize,
}

impl LimitArgs {
    /// The runtime's limits.
    pub fn limits(&self) -> Limits {
        Limits {
            call_timeout: self.call_timeout,
            init_timeout: self.init_timeout,
            max_memory_bytes: self.max_memory,
            max_response_bytes: self.max_response_bytes,
            max_module_bytes: self.max_module_bytes,
            ..Limits::default()
        }
    }
}

/// A positive duration: seconds (`0.1`) or a number with a unit (`100ms`,
/// `2s`), as every duration flag takes.
pub fn duration(text: &str) -> Result<Duration, String> {
    let Seconds(parsed) = text.parse()?;
    if parsed.is_zero() {
        return Err("must be longer than zero".into());
    }
    Ok(parsed)
}

/// A size in bytes with an optional binary unit: `65536`, `64KiB`,
/// `8MiB`, `1GiB`. Hand-written: four suffixes do not need a crate.
pub fn bytes(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: usize = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size (write e.g. 65536, 64KiB, 8MiB)"))?;
    let scale: usize = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" | "k" => 1 << 10,
        "MiB" | "M" => 1 << 20,
        "GiB" | "G" => 1 << 30,
        other => return Err(format!("unknown size unit {other:?} (use KiB, MiB or GiB)")),
    };
    match number.checked_mul(scale) {
        Some(0) => Err("must be larger than zero".into()),
        Some(bytes) => Ok(bytes),
        None => Err(format!("{text:?} is too large")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_units_and_refuse_garbage() {
        assert_eq!(bytes("65536"), Ok(65536));
        assert_eq!(bytes("64KiB"), Ok(64 << 10));
        assert_eq!(bytes("8MiB"), Ok(8 << 20));
        assert_eq!(bytes("1 GiB"), Ok(1 << 30));
        assert!(bytes("0").is_err());
        assert!(bytes("-1MiB").is_err());
        assert!(bytes("8MB").is_err());
        assert!(bytes("99999999999999999999GiB").is_err());
    }

    #[test]
    fn durations_need_a_unit_and_a_length() {
        assert_eq!(duration("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(duration("0.25"), Ok(Duration::from_millis(250)));
        assert!(duration("0s").is_err());
        assert!(duration("0").is_err());
        assert!(duration("100 parsecs").is_err());
        assert!(duration("inf").is_err());
        assert!(duration("-1").is_err());
    }
}
