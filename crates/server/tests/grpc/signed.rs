//! LoadModule takes only modules signed by a key the server trusts, with
//! the signature embedded or sent beside the module.

use hotwasm_trust::{SecretKey, Trust};

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_module_refuses_unsigned_tampered_and_wrong_key_modules() {
    let key = SecretKey::generate();
    let mut setup = Setup::new(RuntimeKind::Wasmtime);
    setup.registry = true;
    setup.trust = Trust::new(vec![key.public_key()]);
    let running = setup.start().await;
    let mut client = running.client().await;
    let fast = hotwasm_modules::find("schnorr", "fast").expect("fast schnorr");
    let default = hotwasm_modules::find("schnorr", "default").expect("default schnorr");
    // Signing changes the bytes: a version that is not built in.
    let signed = key.sign(default.bytes).expect("sign");
    let mut tampered = signed.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let other = SecretKey::generate();
    let by_other = other.sign(default.bytes).expect("sign");
    let unsigned = {
        let mut wasm = default.bytes.to_vec();
        // A custom section: the same code, not the built-in bytes.
        wasm.extend_from_slice(&[0, 3, 2, b'v', b'2']);
        wasm
    };

    for (what, wasm, says) in [
        ("unsigned", unsigned, "not signed".to_string()),
        ("tampered", tampered, "changed after key".to_string()),
        ("wrong key", by_other, other.public_key().key_id()),
    ] {
        let refused = client
            .load_module("schnorr", wasm, true)
            .await
            .expect_err(what);
        assert_eq!(
            refused.code(),
            Some(Code::PermissionDenied),
            "{what}: {refused}"
        );
        assert!(refused.to_string().contains(&says), "{what}: {refused}");
    }
    let list = client.list_modules().await.expect("list");
    assert!(list.versions.is_empty(), "nothing stored: {list:?}");
    assert_eq!(list.serving["schnorr"], fast.id());

    let loaded = client
        .load_module("schnorr", signed.clone(), true)
        .await
        .expect("a module signed by the trusted key loads");
    assert_eq!(loaded.id, hotwasm_modules::module_id("schnorr", &signed));
    let verdicts = client
        .submit_batch(&jobs(7, SchemeChoice::Schnorr, 4))
        .await
        .expect("batch");
    assert!(
        verdicts
            .iter()
            .all(|v| v.module.as_deref() == Some(loaded.id.as_str()))
    );

    // A built-in module needs no signature.
    let built = client
        .load_module("schnorr", fast.bytes.to_vec(), true)
        .await
        .expect("built-in bytes load");
    assert_eq!(built.id, fast.id());
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detached_signature_travels_beside_the_module() {
    let key = SecretKey::generate();
    let mut setup = Setup::new(RuntimeKind::Native);
    setup.registry = true;
    setup.trust = Trust::new(vec![key.public_key()]);
    let running = setup.start().await;
    let mut raw = running.client().await.raw();
    let module = hotwasm_modules::find("ecdsa", "fast").expect("fast ecdsa");
    let mut wasm = module.bytes.to_vec();
    wasm.extend_from_slice(&[0, 3, 2, b'v', b'2']);
    let signature = key.sign_detached(&wasm).expect("sign");
    let mut wrong = signature.clone();
    let last = wrong.len() - 1;
    wrong[last] ^= 1;
    let refused = raw
        .load_module(running.authorized(v1::LoadModuleRequest {
            name: "ecdsa".into(),
            wasm: wasm.clone(),
            activate: true,
            signature: wrong,
        }))
        .await
        .expect_err("a signature that does not verify");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let loaded = raw
        .load_module(running.authorized(v1::LoadModuleRequest {
            name: "ecdsa".into(),
            wasm: wasm.clone(),
            activate: true,
            signature,
        }))
        .await
        .expect("loads with its detached signature")
        .into_inner();
    // Stored with the signature embedded, so it verifies again at start.
    assert_ne!(loaded.sha256, hotwasm_modules::content_hash(&wasm));
    running.shutdown().await;
}
