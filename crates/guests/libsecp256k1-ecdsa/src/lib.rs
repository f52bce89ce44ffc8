//! waPC guest module that verifies ECDSA signatures with libsecp256k1.
//!
//! The `libsecp256k1` module family: the same contract and reasons as
//! `hotwasm-guest-ecdsa` (`hotwasm-secp`'s checks), with Bitcoin Core's C
//! library, compiled to wasm32 by clang, doing the curve arithmetic. Built to
//! `wasm32-unknown-unknown` by `hotwasm-modules`; on any other target this
//! crate is empty, so the workspace still builds natively without a C
//! compiler for wasm32.

#[cfg(target_arch = "wasm32")]
mod guest {
    use wapc_guest::{CallResult, register_function};

    /// waPC entry point the host calls once after instantiation.
    #[unsafe(no_mangle)]
    pub extern "C" fn wapc_init() {
        register_function(hotwasm_abi::OPERATION, verify);
    }

    fn verify(payload: &[u8]) -> CallResult {
        Ok(hotwasm_secp::libsecp256k1::handle(payload)?)
    }
}
