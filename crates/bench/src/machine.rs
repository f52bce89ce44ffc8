//! Section 1, machine and build: CPU, cores, OS, rustc, runtime crate
//! versions, the module variants with their flags, sizes and hashes, date.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// The machine and the build that produced a report.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Date of the run, UTC, `YYYY-MM-DD`.
    pub date: String,
    /// CPU model name from `/proc/cpuinfo`.
    pub cpu: String,
    /// CPU vendor, family and model (`/proc/cpuinfo`), named where known
    /// (`AMD Zen 3/Zen 4 (family 19h, model 1)`): the interpreters' ratios
    /// to native differ about 2.5x between the families these figures
    /// come from, so every table set names it.
    pub cpu_family: String,
    /// Logical CPUs this process may use.
    pub cores: usize,
    /// Total memory in MiB, from `/proc/meminfo`.
    pub memory_mib: Option<u64>,
    /// OS name (`/etc/os-release`).
    pub os: String,
    /// Kernel release.
    pub kernel: String,
    /// `rustc -V` of the compiler that built this binary, captured at build
    /// time.
    pub rustc: String,
    /// `release` or `debug` (debug assertions on).
    pub profile: String,
    /// Resolved versions of the runtime crates and k256, read from
    /// `Cargo.lock` at build time.
    pub crates: Vec<CrateVersion>,
    /// Every module variant, built or not.
    pub variants: Vec<VariantInfo>,
}

/// One crate and its version.
#[derive(Debug, Clone, Serialize)]
pub struct CrateVersion {
    /// Crate name.
    pub name: String,
    /// Version from `Cargo.lock`.
    pub version: String,
}

/// A module variant and, when built, its modules.
#[derive(Debug, Clone, Serialize)]
pub struct VariantInfo {
    /// Variant name.
    pub name: String,
    /// The verification code it compiles: `k256` or `libsecp256k1`.
    pub family: String,
    /// What it is for.
    pub summary: String,
    /// Build flags and profile knobs.
    pub flags: String,
    /// Whether this binary carries it.
    pub built: bool,
    /// Its modules (empty when not built).
    pub modules: Vec<ModuleInfo>,
}

/// One built module.
#[derive(Debug, Clone, Serialize)]
pub struct ModuleInfo {
    /// `schnorr` or `ecdsa`.
    pub scheme: String,
    /// Size in bytes.
    pub bytes: usize,
    /// SHA-256 of the bytes, hex.
    pub sha256: String,
}

/// Describes this machine and build.
pub fn describe() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim() == "model name").then(|| value.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let field = |name: &str| {
        cpuinfo.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim() == name).then(|| value.trim().to_string())
        })
    };
    let cpu_family = family_name(
        field("vendor_id").as_deref().unwrap_or("unknown"),
        field("cpu family").and_then(|f| f.parse().ok()),
        field("model").and_then(|m| m.parse().ok()),
    );
    let memory_mib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib / 1024)
        });
    let os = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        })
        .unwrap_or_else(|| std::env::consts::OS.to_string());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| format!("Linux {}", s.trim()))
        .unwrap_or_else(|_| "unknown".into());
    Machine {
        date: today(),
        cpu,
        cpu_family,
        cores: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        memory_mib,
        os,
        kernel,
        rustc: env!("HOTWASM_BENCH_RUSTC").to_string(),
        profile: if cfg!(debug_assertions) {
            "debug".into()
        } else {
            "release".into()
        },
        crates: crate_versions(),
        variants: variants(),
    }
}

/// A CPU family's name from `/proc/cpuinfo`'s vendor, family and model.
pub fn family_name(vendor: &str, family: Option<u32>, model: Option<u32>) -> String {
    let (Some(family), Some(model)) = (family, model) else {
        return format!("{vendor}, family unknown");
    };
    let named = match (vendor, family, model) {
        ("AuthenticAMD", 0x17, _) => Some("AMD Zen/Zen 2"),
        ("AuthenticAMD", 0x19, _) => Some("AMD Zen 3/Zen 4"),
        ("AuthenticAMD", 0x1a, _) => Some("AMD Zen 5"),
        ("GenuineIntel", 6, 85) => Some("Intel Skylake/Cascade Lake server"),
        ("GenuineIntel", 6, 106 | 108) => Some("Intel Ice Lake server"),
        ("GenuineIntel", 6, 143) => Some("Intel Sapphire Rapids"),
        ("GenuineIntel", 6, 207) => Some("Intel Emerald Rapids"),
        ("GenuineIntel", 6, 173 | 174) => Some("Intel Granite Rapids"),
        _ => None,
    };
    let numbers = if vendor == "AuthenticAMD" {
        format!("family {family:x}h, model {model}")
    } else {
        format!("family {family}, model {model}")
    };
    match named {
        Some(name) => format!("{name} ({numbers})"),
        None => format!("{vendor} {numbers}"),
    }
}

/// The runtime crates' versions recorded by the build script.
pub fn crate_versions() -> Vec<CrateVersion> {
    env!("HOTWASM_BENCH_CRATE_VERSIONS")
        .split(',')
        .filter_map(|pair| pair.split_once('='))
        .map(|(name, version)| CrateVersion {
            name: name.to_string(),
            version: version.to_string(),
        })
        .collect()
}

fn variants() -> Vec<VariantInfo> {
    hotwasm_modules::VARIANTS
        .iter()
        .map(|variant| {
            let modules: Vec<ModuleInfo> = hotwasm_modules::built()
                .iter()
                .filter(|m| m.variant.name == variant.name)
                .map(|m| ModuleInfo {
                    scheme: m.scheme.to_string(),
                    bytes: m.bytes.len(),
                    sha256: m.hash(),
                })
                .collect();
            VariantInfo {
                name: variant.name.to_string(),
                family: variant.family.name().to_string(),
                summary: variant.summary.to_string(),
                flags: variant.describe_flags(),
                built: !modules.is_empty(),
                modules,
            }
        })
        .collect()
}

/// Today's date in UTC as `YYYY-MM-DD`.
fn today() -> String {
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or(0);
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_families_are_named_with_their_numbers() {
        assert_eq!(
            family_name("AuthenticAMD", Some(25), Some(1)),
            "AMD Zen 3/Zen 4 (family 19h, model 1)"
        );
        assert_eq!(
            family_name("GenuineIntel", Some(6), Some(207)),
            "Intel Emerald Rapids (family 6, model 207)"
        );
        assert_eq!(
            family_name("GenuineIntel", Some(6), Some(1)),
            "GenuineIntel family 6, model 1"
        );
        assert_eq!(family_name("x", None, Some(1)), "x, family unknown");
    }

    #[test]
    fn civil_dates_of_known_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(20_783), (2026, 11, 26));
    }

    #[test]
    fn crate_versions_match_cargo_lock() {
        let lock = include_str!("../../../Cargo.lock");
        let versions = crate_versions();
        assert_eq!(versions.len(), 4);
        for v in versions {
            let entry = format!("name = \"{}\"\nversion = \"{}\"", v.name, v.version);
            assert!(
                lock.contains(&entry),
                "{} {} not in Cargo.lock",
                v.name,
                v.version
            );
        }
    }
}
