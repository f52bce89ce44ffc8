//! What authenticating one reply costs: the server's job digest, tag and
//! encoding, and the client's decoding, tag check and digest check, against
//! the same reply unsigned.
//!
//! `cargo bench -p hotwasm-queue --bench reply_auth` prints the median
//! time per reply of each side, signed and unsigned, over
//! `HOTWASM_BENCH_RUNS` runs (default 15) of 20,000 replies, interleaved.
//! The end-to-end figure is `cargo bench -p hotwasm-pipeline --bench
//! reply_auth`.

use std::hint::black_box;
use std::time::Instant;

use hotwasm_auth::MacKey;
use hotwasm_jobs::Verdict;
use hotwasm_queue::Reply;

const REPLIES: usize = 20_000;

fn main() {
    let runs: usize = std::env::var("HOTWASM_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let key = MacKey::generate();
    // A typical job line (~330 bytes) and verdict.
    let job = format!(
        r#"{{"id":"0000042-schnorr-valid","scheme":"schnorr","public_key":"{}","signature":"{}","message":"{}","expect":true}}"#,
        "ab".repeat(32),
        "cd".repeat(64),
        "ef".repeat(32)
    )
    .into_bytes();
    let verdict = Verdict {
        id: Some("0000042-schnorr-valid".into()),
        valid: true,
        reason: None,
        runtime: "wasmtime".into(),
        module: Some("schnorr@5881478aa3f46682".into()),
        micros: 87.3,
    };
    let mut times: [Vec<f64>; 4] = Default::default();
    for _ in 0..runs {
        for (slot, sign) in [(0, true), (1, false)] {
            let started = Instant::now();
            let mut bytes = Vec::new();
            for seq in 0..REPLIES {
                let mut reply = Reply::answering(seq as u64, "a".into(), verdict.clone(), &job);
                if sign {
                    reply.sign(&key);
                }
                bytes = reply.encode();
            }
            times[slot].push(started.elapsed().as_secs_f64() * 1e9 / REPLIES as f64);
            let started = Instant::now();
            for _ in 0..REPLIES {
                let reply = Reply::decode(black_box(&bytes)).expect("decodes");
                let ok = (!sign || reply.verify(&key))
                    && reply.job_digest.as_deref() == Some(Reply::digest_of(&job).as_str());
                black_box(ok);
            }
            times[slot + 2].push(started.elapsed().as_secs_f64() * 1e9 / REPLIES as f64);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[v.len() / 2], v[0], v[v.len() - 1])
    };
    println!("{runs} runs of {REPLIES} replies, ns per reply, median (min-max)");
    for (name, index) in [
        ("server: digest + tag + encode", 0),
        ("server: digest + encode (unsigned)", 1),
        ("client: decode + tag check + digest check", 2),
        ("client: decode + digest check (unsigned)", 3),
    ] {
        let (m, lo, hi) = median(&mut times[index]);
        println!("  {name:<44} {m:>7.0} ({lo:.0}-{hi:.0})");
    }
}
