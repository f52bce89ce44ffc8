//! The module variants: how each build of the guests is compiled.
//!
//! This file is shared with `build.rs` (through `#[path]`), so the list the
//! build script compiles and the list the library exposes cannot drift.

/// One way of compiling the guest crates to WebAssembly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variant {
    /// Name used on the command line (`--variant fast`).
    pub name: &'static str,
    /// What the variant is for, in one line.
    pub summary: &'static str,
    /// Extra `rustc` flags, one per element.
    pub rustflags: &'static [&'static str],
    /// Release-profile `opt-level` (`"3"`, `"s"`, ...).
    pub opt_level: &'static str,
    /// Release-profile `codegen-units`.
    pub codegen_units: u32,
    /// Release-profile `lto` (fat LTO also re-generates the standard
    /// library's code with this variant's target features).
    pub lto: bool,
    /// Built by a plain `cargo build`: the three the runtimes prefer, and
    /// the opt-level `s` and codegen-units 8 builds of `fast` (wasmtime's)
    /// and `compat` (wasm3's), so the main job's report has the research
    /// draft's build comparison and wasm3 has a second version to swap to.
    /// The others only with `HOTWASM_ALL_VARIANTS=1`.
    pub essential: bool,
}

impl Variant {
    /// The flags and profile knobs as one human-readable line.
    pub fn describe_flags(&self) -> String {
        let mut parts: Vec<String> = self.rustflags.iter().map(|f| f.to_string()).collect();
        parts.push(format!("opt-level={}", self.opt_level));
        parts.push(format!("codegen-units={}", self.codegen_units));
        parts.push(format!("lto={}", if self.lto { "fat" } else { "off" }));
        if self.is_mvp() {
            parts.push("lowered to MVP".to_string());
        }
        parts.join(" ")
    }

    /// Whether the variant targets WebAssembly 1.0 (MVP) only; such modules
    /// are lowered after compilation (see `build/lower_to_mvp.rs`).
    pub fn is_mvp(&self) -> bool {
        self.rustflags.contains(&MVP)
    }
}

const CPUBITS_32: &str = "--cfg=cpubits=\"32\"";
const CPUBITS_64: &str = "--cfg=cpubits=\"64\"";
const MVP: &str = "-Ctarget-cpu=mvp";
const WIDE: &str = "-Ctarget-feature=+wide-arithmetic";

/// Every variant: the runtimes' preferred builds, then the others.
pub const VARIANTS: &[Variant] = &[
    Variant {
        name: "compat",
        summary: "MVP wasm only, 32-bit limbs: loads in every runtime, wasm3 included",
        rustflags: &[MVP, CPUBITS_32],
        opt_level: "3",
        codegen_units: 1,
        lto: true,
        essential: true,
    },
    Variant {
        name: "default",
        summary: "the toolchain's default wasm features, 32-bit limbs (fastest without wide-arithmetic)",
        rustflags: &[CPUBITS_32],
        opt_level: "3",
        codegen_units: 1,
        lto: true,
        essential: true,
    },
    Variant {
        name: "fast",
        summary: "64-bit limbs with the wide-arithmetic proposal (128-bit multiplies in one instruction)",
        rustflags: &[CPUBITS_64, WIDE],
        opt_level: "3",
        codegen_units: 1,
        lto: true,
        essential: true,
    },
    Variant {
        name: "limb64",
        summary: "64-bit limbs without wide-arithmetic: every 128-bit multiply is a __multi3 call",
        rustflags: &[CPUBITS_64],
        opt_level: "3",
        codegen_units: 1,
        lto: true,
        essential: false,
    },
    Variant {
        name: "default-opt-s",
        summary: "`default` optimised for size",
        rustflags: &[CPUBITS_32],
        opt_level: "s",
        codegen_units: 1,
        lto: true,
        essential: false,
    },
    Variant {
        name: "default-cgu8",
        summary: "`default` with codegen-units=8 and no LTO (the draft's other setting)",
        rustflags: &[CPUBITS_32],
        opt_level: "3",
        codegen_units: 8,
        lto: false,
        essential: false,
    },
    Variant {
        name: "fast-opt-s",
        summary: "`fast` optimised for size",
        rustflags: &[CPUBITS_64, WIDE],
        opt_level: "s",
        codegen_units: 1,
        lto: true,
        essential: true,
    },
    Variant {
        name: "fast-cgu8",
        summary: "`fast` with codegen-units=8 and no LTO",
        rustflags: &[CPUBITS_64, WIDE],
        opt_level: "3",
        codegen_units: 8,
        lto: false,
        essential: true,
    },
    Variant {
        name: "compat-opt-s",
        summary: "`compat` optimised for size",
        rustflags: &[MVP, CPUBITS_32],
        opt_level: "s",
        codegen_units: 1,
        lto: true,
        essential: true,
    },
    Variant {
        name: "compat-cgu8",
        summary: "`compat` with codegen-units=8 and no LTO",
        rustflags: &[MVP, CPUBITS_32],
        opt_level: "3",
        codegen_units: 8,
        lto: false,
        essential: true,
    },
];

/// The guest crates, by the scheme they serve.
pub const GUESTS: &[(&str, &str)] = &[
    ("schnorr", "hotwasm-guest-schnorr"),
    ("ecdsa", "hotwasm-guest-ecdsa"),
];
