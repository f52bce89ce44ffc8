//! Load and back-pressure: many clients at once get every verdict with
//! memory that stays bounded, and past capacity a call is refused at once
//! (`RESOURCE_EXHAUSTED`) instead of being parked without bound. Figures
//! are printed, never asserted.

use std::time::Instant;

use super::*;

/// Resident memory of this process, in KiB (`/proc/self/status`).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_clients_at_once_get_every_verdict_in_bounded_memory() {
    const CLIENTS: usize = 16;
    const CALLS: usize = 300;
    // Alone: the memory measured is the process's, not this test's only.
    let running = Setup::new(RuntimeKind::Wasmtime).alone().start().await;
    let jobs = Arc::new(jobs(16, SchemeChoice::Mixed, 32));
    // A first round warms every path up, so what is measured after it is
    // growth under load, not start-up.
    let mut warm = running.client().await;
    for job in jobs.iter() {
        warm.verify(job).await.expect("verify");
    }
    let before = rss_kib();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        let url = running.url.clone();
        let jobs = Arc::clone(&jobs);
        tasks.push(tokio::spawn(async move {
            let mut connection = AdminClient::connect(&url).await.expect("connect");
            let mut latencies = Vec::with_capacity(CALLS);
            for call in 0..CALLS {
                let job = &jobs[(client + call) % jobs.len()];
                let sent = Instant::now();
                let verdict = connection.verify(job).await.expect("every call answered");
                latencies.push(sent.elapsed());
                assert_eq!(Some(verdict.valid), job.expect, "{verdict:?}");
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("client task"));
    }
    let elapsed = started.elapsed();
    let grown = rss_kib().saturating_sub(before);
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100];
    eprintln!(
        "load: {} calls from {CLIENTS} clients in {:.2} s ({:.0}/s), p99 {:.1} ms, RSS grew {} KiB",
        latencies.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        p99.as_secs_f64() * 1e3,
        grown
    );
    assert_eq!(latencies.len(), CLIENTS * CALLS);
    assert_eq!(running.server.stats().refused.load(Ordering::Relaxed), 0);
    // Connections and buffers, not a leak per call: far below what
    // parking 4,800 calls' worth of state would take if it were never freed.
    assert!(grown < 128 * 1024, "RSS grew {grown} KiB");
    running.shutdown().await;
}

/// With its one worker held and every in-flight slot taken, the next
/// `Verify` and `SubmitBatch` are refused at once; the calls already in
/// all get their verdicts when the worker goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_capacity_calls_are_refused_at_once() {
    let mut setup = Setup::new(RuntimeKind::Native);
    setup.workers = 1;
    let running = setup.start().await;
    let gate = WorkerGate::hold(&running.server).await;
    // One worker: 128 in-flight slots.
    let capacity = 128;
    let jobs = Arc::new(jobs(128, SchemeChoice::Mixed, capacity));
    let mut waiting = Vec::new();
    for index in 0..capacity {
        let url = running.url.clone();
        let jobs = Arc::clone(&jobs);
        waiting.push(tokio::spawn(async move {
            let mut client = AdminClient::connect(&url).await.expect("connect");
            client.verify(&jobs[index]).await
        }));
    }
    wait_until("every slot holds a queued job", async || {
        running.server.pool().queued() == capacity
    })
    .await;

    let mut client = running.client().await;
    let refused_at = Instant::now();
    let refused = client.verify(&jobs[0]).await.expect_err("at capacity");
    let refusal = refused_at.elapsed();
    let AdminError::Call { code, message, .. } = &refused else {
        panic!("{refused:?}");
    };
    assert_eq!(*code, Code::ResourceExhausted, "{message}");
    assert!(message.contains("at capacity"), "{message}");
    let batch = client
        .submit_batch(&jobs[..2])
        .await
        .expect_err("at capacity");
    assert!(
        matches!(
            batch,
            AdminError::Call {
                code: Code::ResourceExhausted,
                ..
            }
        ),
        "{batch:?}"
    );
    eprintln!(
        "back-pressure: refused in {:.2} ms with {capacity} jobs in flight",
        refusal.as_secs_f64() * 1e3
    );

    gate.open();
    for (index, call) in waiting.into_iter().enumerate() {
        let verdict = call
            .await
            .expect("task")
            .expect("answered once the worker goes on");
        assert_eq!(Some(verdict.valid), jobs[index].expect);
    }
    assert_eq!(running.server.stats().refused.load(Ordering::Relaxed), 2);
    running.shutdown().await;
}
