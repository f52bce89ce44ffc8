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
    /// Which verification code it compiles.
    pub family: Family,
    /// Extra `rustc` flags, one per element.
    pub rustflags: &'static [&'static str],
    /// Flags for the C compiler (clang), one per element: the
    /// `libsecp256k1` family's C sources. Empty for `k256`.
    pub cflags: &'static [&'static str],
    /// Release-profile `opt-level` (`"3"`, `"s"`, ...).
    pub opt_level: &'static str,
    /// Release-profile `codegen-units`.
    pub codegen_units: u32,
    /// Release-profile `lto` (fat LTO also re-generates the standard
    /// library's code with this variant's target features).
    pub lto: bool,
    /// Built by a plain `cargo build`: the three the runtimes prefer, the
    /// opt-level `s` and codegen-units 8 builds of `fast` (wasmtime's) and
    /// `compat` (wasm3's), so the main job's report has the research
    /// draft's build comparison and wasm3 has a second version to swap to,
    /// and the two `libsecp256k1` builds every runtime loads one of. The
    /// others only with `HOTWASM_ALL_VARIANTS=1`.
    pub essential: bool,
}

impl Variant {
    /// The flags and profile knobs as one human-readable line.
    pub fn describe_flags(&self) -> String {
        let mut parts: Vec<String> = self.rustflags.iter().map(|f| f.to_string()).collect();
        if !self.cflags.is_empty() {
            parts.push(format!("CFLAGS=\"{}\"", self.cflags.join(" ")));
        }
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

/// The verification code a module family compiles: every family serves
/// both schemes with the same contract and reasons (`hotwasm-secp`'s
/// checks), on its own curve arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// RustCrypto's k256, in Rust: the code the `native` runtime also runs.
    K256,
    /// libsecp256k1, Bitcoin Core's C library (through the `secp256k1`
    /// crate), compiled to wasm32 by clang: a second, independent
    /// implementation.
    Libsecp256k1,
}

impl Family {
    /// The family's name in listings and reports.
    pub fn name(self) -> &'static str {
        match self {
            Family::K256 => "k256",
            Family::Libsecp256k1 => "libsecp256k1",
        }
    }

    /// The guest crates, by the scheme they serve.
    pub fn guests(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Family::K256 => &[
                ("schnorr", "hotwasm-guest-schnorr"),
                ("ecdsa", "hotwasm-guest-ecdsa"),
            ],
            Family::Libsecp256k1 => &[
                ("schnorr", "hotwasm-guest-libsecp256k1-schnorr"),
                ("ecdsa", "hotwasm-guest-libsecp256k1-ecdsa"),
            ],
        }
    }
}

const CPUBITS_32: &str = "--cfg=cpubits=\"32\"";
const CPUBITS_64: &str = "--cfg=cpubits=\"64\"";
const MVP: &str = "-Ctarget-cpu=mvp";
const WIDE: &str = "-Ctarget-feature=+wide-arithmetic";
/// libsecp256k1 on 10x26-bit field limbs with 64-bit products: without it
/// clang picks 5x52-bit limbs whose 128-bit products are `__multi3` calls
/// on wasm32 (what `cpubits="32"` is to k256).
const C_WIDEMUL_64: &str = "-DUSE_FORCE_WIDEMUL_INT64=1";
/// WebAssembly 1.0 for the C code (what `-Ctarget-cpu=mvp` is to rustc).
const C_MVP: &str = "-mcpu=mvp";

/// Every variant: the runtimes' preferred builds, then the others.
pub const VARIANTS: &[Variant] = &[
    Variant {
        name: "compat",
        summary: "MVP wasm only, 32-bit limbs: loads in every runtime, wasm3 included",
        family: Family::K256,
        rustflags: &[MVP, CPUBITS_32],
        cflags: &[],
        opt_level: "3",
        codegen_units: 1,
        lto: true,
        essential: true,
    },
    Variant {
        name: "default",
        summary: "the toolchain's default wasm features, 32-bit limbs (fastest without wide-arithmetic)",
        family: Family::K256,
        rustflags: &[CPUBITS_32],
        cflags: &[],
        opt_level: "3",
        codegen_units: 1,
        lto: true,
        essential: true,
    },
    Variant {
        name: "fast",
        summary: "64-bit limbs with the wide-arithmetic proposal (128-bit multiplies in one instruction)",
        family: Family::K256,
        rustflags: &[CPUBITS_64, WIDE],
        cflags: &[],
        opt_level: "3",
        codegen_units: 1,
        lto: true,
        essential: true,
    },
    Variant {
        name: "limb64",
        summary: "64-bit limbs without wide-arithmetic: every 128-bit multiply is a __multi3 call",
        family: Family::K256,
        rustflags: &[CPUBITS_64],
        cflags: &[],
        opt_level: "3",
        codegen_units: 1,
        lto: true,
        essential: false,
    },
    Variant {
        name: "default-opt-s",
        summary: "`default` optimised for size",
        family: Family::K256,
        rustflags: &[CPUBITS_32],
        cflags: &[],
        opt_level: "s",
        codegen_units: 1,
        lto: true,
        essential: false,
    },
    Variant {
        name: "default-cgu8",
        summary: "`default` with codegen-units=8 and no LTO (the draft's other setting)",
        family: Family::K256,
        rustflags: &[CPUBITS_32],
        cflags: &[],
        opt_level: "3",
        codegen_units: 8,
        lto: false,
        essential: false,
    },
    Variant {
        name: "fast-opt-s",
        summary: "`fast` optimised for size",
        family: Family::K256,
        rustflags: &[CPUBITS_64, WIDE],
        cflags: &[],
        opt_level: "s",
        codegen_units: 1,
        lto: true,
        essential: true,
    },
    Variant {
        name: "fast-cgu8",
        summary: "`fast` with codegen-units=8 and no LTO",
        family: Family::K256,
        rustflags: &[CPUBITS_64, WIDE],
        cflags: &[],
        opt_level: "3",
        codegen_units: 8,
        lto: false,
        essential: true,
    },
    Variant {
        name: "compat-opt-s",
        summary: "`compat` optimised for size",
        family: Family::K256,
        rustflags: &[MVP, CPUBITS_32],
        cflags: &[],
        opt_level: "s",
        codegen_units: 1,
        lto: true,
        essential: true,
    },
    Variant {
        name: "compat-cgu8",
        summary: "`compat` with codegen-units=8 and no LTO",
        family: Family::K256,
        rustflags: &[MVP, CPUBITS_32],
        cflags: &[],
        opt_level: "3",
        codegen_units: 8,
        lto: false,
        essential: true,
    },
    Variant {
        name: "libsecp256k1",
        summary: "libsecp256k1 (C, clang) on 32-bit limbs, the toolchains' default wasm features",
        family: Family::Libsecp256k1,
        rustflags: &[],
        cflags: &[C_WIDEMUL_64],
        opt_level: "3",
        codegen_units: 1,
        lto: true,
        essential: true,
    },
    Variant {
        name: "libsecp256k1-compat",
        summary: "libsecp256k1 (C, clang) on 32-bit limbs, MVP wasm only: loads in wasm3 too",
        family: Family::Libsecp256k1,
        rustflags: &[MVP],
        cflags: &[C_WIDEMUL_64, C_MVP],
        opt_level: "3",
        codegen_units: 1,
        lto: true,
        essential: true,
    },
    Variant {
        name: "libsecp256k1-int128",
        summary: "libsecp256k1 on 64-bit limbs: every 128-bit product is a __multi3 call",
        family: Family::Libsecp256k1,
        rustflags: &[],
        cflags: &[],
        opt_level: "3",
        codegen_units: 1,
        lto: true,
        essential: false,
    },
];
