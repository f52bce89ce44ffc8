//! Helpers shared by the end-to-end tests: the official test vectors as
//! jobs, small wasm modules that misbehave on purpose ([`hostile`]: ones
//! that attack the host's limits), a key that signs the modules the tests
//! load ([`signing`]), and a real `redis-server` on a unix socket of its
//! own ([`RedisServer`]).

use std::path::PathBuf;

use hotwasm_abi::Scheme;
use hotwasm_jobs::Job;
use serde::Deserialize;

pub mod hostile;
mod redis_server;
pub mod signing;

pub use redis_server::RedisServer;

/// `../shared/testdata` beside the project root, or `$HOTWASM_TESTDATA`.
pub fn testdata_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("HOTWASM_TESTDATA") {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata")
}

fn read(name: &str) -> String {
    let path = testdata_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read test vectors {}: {e} (set HOTWASM_TESTDATA to the testdata folder)",
            path.display()
        )
    })
}

/// One official vector as a job, with the vector's own verdict.
#[derive(Debug, Clone)]
pub struct Vector {
    /// The job; its `expect` is the vector's result.
    pub job: Job,
    /// The vector's comment or flags, for failure messages.
    pub comment: String,
}

/// The 19 BIP-340 vectors (0–18).
pub fn bip340() -> Vec<Vector> {
    let text = read("bip340_test_vectors.csv");
    text.lines()
        .skip(1)
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.splitn(8, ',').collect();
            assert!(fields.len() >= 7, "short BIP-340 line: {line}");
            let hex = |s: &str| hex::decode(s).unwrap_or_else(|e| panic!("bad hex in {line}: {e}"));
            Vector {
                job: Job {
                    id: format!("bip340-{}", fields[0]),
                    scheme: Scheme::Schnorr,
                    public_key: hex(fields[2]),
                    signature: hex(fields[5]),
                    message: hex(fields[4]),
                    expect: Some(fields[6] == "TRUE"),
                },
                comment: fields.get(7).unwrap_or(&"").to_string(),
            }
        })
        .collect()
}

#[derive(Deserialize)]
struct WycheproofFile {
    #[serde(rename = "testGroups")]
    test_groups: Vec<WycheproofGroup>,
}

#[derive(Deserialize)]
struct WycheproofGroup {
    #[serde(rename = "publicKey")]
    public_key: WycheproofKey,
    tests: Vec<WycheproofTest>,
}

#[derive(Deserialize)]
struct WycheproofKey {
    uncompressed: String,
}

#[derive(Deserialize)]
struct WycheproofTest {
    #[serde(rename = "tcId")]
    tc_id: u32,
    comment: String,
    flags: Vec<String>,
    msg: String,
    sig: String,
    result: String,
}

/// The Wycheproof ECDSA secp256k1/SHA-256 vectors of one file.
pub fn wycheproof(file: &str) -> Vec<Vector> {
    let parsed: WycheproofFile = serde_json::from_str(&read(file))
        .unwrap_or_else(|e| panic!("{file} is not Wycheproof JSON: {e}"));
    let hex = |s: &str| hex::decode(s).unwrap_or_else(|e| panic!("bad hex in {file}: {e}"));
    parsed
        .test_groups
        .iter()
        .flat_map(|group| {
            group.tests.iter().map(move |test| Vector {
                job: Job {
                    id: format!("wycheproof-{}", test.tc_id),
                    scheme: Scheme::Ecdsa,
                    public_key: hex(&group.public_key.uncompressed),
                    signature: hex(&test.sig),
                    message: hex(&test.msg),
                    expect: Some(test.result == "valid"),
                },
                comment: format!("{} {:?}", test.comment, test.flags),
            })
        })
        .collect()
}

/// The Bitcoin-policy Wycheproof file (low-S required).
pub const WYCHEPROOF_BITCOIN: &str = "wycheproof_ecdsa_secp256k1_sha256_bitcoin_test.json";
/// The plain Wycheproof file (high-S allowed).
pub const WYCHEPROOF_PLAIN: &str = "wycheproof_ecdsa_secp256k1_sha256_test.json";

/// The waPC imports every misbehaving module below declares.
pub(crate) const WAPC_IMPORTS: &str = r#"
    (import "wapc" "__guest_request" (func $guest_request (param i32 i32)))
    (import "wapc" "__guest_response" (func $guest_response (param i32 i32)))
    (import "wapc" "__guest_error" (func $guest_error (param i32 i32)))
"#;

/// A waPC module whose `__guest_call` always executes `unreachable`.
pub fn trapping_module() -> Vec<u8> {
    wat(&format!(
        r#"(module {WAPC_IMPORTS}
            (memory (export "memory") 1)
            (func (export "__guest_call") (param i32 i32) (result i32) unreachable))"#
    ))
}

/// A waPC module whose `wapc_init` traps.
pub fn init_trapping_module() -> Vec<u8> {
    wat(&format!(
        r#"(module {WAPC_IMPORTS}
            (memory (export "memory") 1)
            (func (export "wapc_init") unreachable)
            (func (export "__guest_call") (param i32 i32) (result i32) i32.const 0))"#
    ))
}

/// A waPC module that reports a response lying outside its memory.
pub fn out_of_bounds_module() -> Vec<u8> {
    wat(&format!(
        r#"(module {WAPC_IMPORTS}
            (memory (export "memory") 1)
            (func (export "__guest_call") (param i32 i32) (result i32)
                (call $guest_response (i32.const 65000) (i32.const 4096))
                i32.const 1))"#
    ))
}

/// A waPC module that answers every call with `valid: true`, whatever the
/// signature: valid waPC, wrong verdicts.
pub fn always_valid_module() -> Vec<u8> {
    // MessagePack {"valid": true, "reason": nil}, stored at address 0.
    wat(&format!(
        r#"(module {WAPC_IMPORTS}
            (memory (export "memory") 1)
            (data (i32.const 0) "\82\a5valid\c3\a6reason\c0")
            (func (export "__guest_call") (param i32 i32) (result i32)
                (call $guest_request (i32.const 1024) (i32.const 2048))
                (call $guest_response (i32.const 0) (i32.const 16))
                i32.const 1))"#
    ))
}

/// A valid wasm module that is not a waPC guest (no `__guest_call`).
pub fn not_wapc_module() -> Vec<u8> {
    wat(r#"(module (memory (export "memory") 1) (func (export "hello")))"#)
}

pub(crate) fn wat(text: &str) -> Vec<u8> {
    wat::parse_str(text).unwrap_or_else(|e| panic!("test module does not assemble: {e}"))
}

/// `wasm` with a custom section appended: the same code under another
/// content hash, i.e. a second version of a module.
pub fn second_version(wasm: &[u8], tag: &str) -> Vec<u8> {
    hotwasm_modules::tagged(wasm, tag)
}
