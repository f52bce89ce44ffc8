//! waPC guest module that verifies secp256k1 ECDSA signatures.
//!
//! Built to `wasm32-unknown-unknown` by `hotwasm-modules`; on any other
//! target this crate is empty, so the workspace still builds natively. The
//! verification code is `hotwasm-secp` with only the `ecdsa` feature, so the
//! module carries no code for the other scheme.

#[cfg(target_arch = "wasm32")]
mod guest {
    use wapc_guest::{CallResult, register_function};

    /// waPC entry point the host calls once after instantiation.
    #[unsafe(no_mangle)]
    pub extern "C" fn wapc_init() {
        register_function(hotwasm_abi::OPERATION, verify);
    }

    fn verify(payload: &[u8]) -> CallResult {
        Ok(hotwasm_secp::handle(payload)?)
    }
}
