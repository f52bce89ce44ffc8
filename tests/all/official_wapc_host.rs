//! Our guest modules run in the official waPC host (`wapc` +
//! `wasmtime-provider`): proof that they are real waPC modules.

use hotwasm_abi::{VerifyResponse, decode, encode};
use hotwasm_jobs::{Generator, SchemeChoice};

#[test]
fn built_modules_run_in_the_official_wapc_host() {
    for variant in ["default", "compat"] {
        for scheme in ["schnorr", "ecdsa"] {
            let module = hotwasm_modules::find(scheme, variant).expect("built");
            let engine = wasmtime_provider::WasmtimeEngineProviderBuilder::new()
                .module_bytes(module.bytes)
                .build()
                .unwrap_or_else(|e| panic!("{scheme}/{variant}: provider refused the module: {e}"));
            let host = wapc::WapcHost::new(Box::new(engine), None)
                .unwrap_or_else(|e| panic!("{scheme}/{variant}: host refused the module: {e}"));
            let choice = scheme.parse::<SchemeChoice>().expect("a scheme");
            for job in Generator::new(11, choice, 0.5).take(20) {
                let response = host
                    .call("verify", &encode(&job.request()))
                    .unwrap_or_else(|e| panic!("{scheme}/{variant} {}: {e}", job.id));
                let response: VerifyResponse = decode(&response).expect("a verify response");
                assert_eq!(
                    Some(response.valid),
                    job.expect,
                    "{}: {:?}",
                    job.id,
                    response.reason
                );
            }
            // Only an undecodable request is a waPC error.
            assert!(host.call("verify", b"\xc1 not msgpack").is_err());
        }
    }
}
