//! Verification over gRPC: unary, streams, batches, size limits, deadlines.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unary_verify_answers_valid_invalid_and_malformed_jobs() {
    let running = Setup::new(RuntimeKind::Wasmtime).start().await;
    let mut client = running.client().await;
    for job in jobs(1, SchemeChoice::Mixed, 60) {
        let verdict = client.verify(&job).await.expect("verify");
        assert_verdict(&job, &verdict, "wasmtime");
    }
    let mut raw = client.raw();
    let bad = bad_requests();
    for (request, reason) in &bad {
        let verdict = raw
            .verify(request.clone())
            .await
            .expect("a verdict, not an error");
        assert_error_verdict(verdict.get_ref(), request, reason);
    }
    let stats = client.stats().await.expect("stats");
    assert_eq!(stats.server, SERVER_NAME);
    assert_eq!(stats.runtime, "wasmtime");
    assert_eq!(stats.workers, 2);
    assert_eq!(stats.verdicts, 60);
    assert_eq!(stats.malformed, bad.len() as u64);
    // Every verdict of a job that reached a module (malformed requests
    // never do) is one answered call of a serving version; none failed.
    let calls: u64 = stats.modules.iter().map(|m| m.calls).sum();
    assert_eq!(calls, stats.verdicts, "{stats:?}");
    assert!(
        stats.modules.iter().all(|m| m.failures == 0 && !m.failing),
        "{stats:?}"
    );
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_answers_every_request_in_order_and_goes_on_after_bad_ones() {
    let running = Setup::new(RuntimeKind::Wasmtime).start().await;
    let jobs = jobs(2, SchemeChoice::Mixed, 200);
    let bad = bad_requests();
    // Every 40th request is a bad one; the stream must go on past it.
    let mut requests = Vec::new();
    let mut expected = Vec::new();
    for (index, job) in jobs.iter().enumerate() {
        if index % 40 == 7 {
            let (request, reason) = &bad[(index / 40) % bad.len()];
            requests.push(request.clone());
            expected.push(Err((request.clone(), *reason)));
        }
        requests.push(verify_request(job));
        expected.push(Ok(job));
    }
    let mut answers = running
        .client()
        .await
        .raw()
        .verify_stream(tokio_stream::iter(requests))
        .await
        .expect("stream opens")
        .into_inner();
    let mut received = 0;
    while let Some(verdict) = answers.message().await.expect("no stream error") {
        match &expected[received] {
            Ok(job) => assert_verdict(job, &verdict, "wasmtime"),
            Err((request, reason)) => assert_error_verdict(&verdict, request, reason),
        }
        received += 1;
    }
    assert_eq!(received, expected.len());
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_batch_answers_in_the_order_of_the_jobs() {
    let running = Setup::new(RuntimeKind::Native).start().await;
    let jobs = jobs(3, SchemeChoice::Mixed, 300);
    let verdicts = running
        .client()
        .await
        .submit_batch(&jobs)
        .await
        .expect("batch");
    assert_eq!(verdicts.len(), jobs.len());
    for (job, verdict) in jobs.iter().zip(&verdicts) {
        assert_verdict(job, verdict, "native");
    }
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_requests_get_resource_exhausted() {
    let limit = 64 * 1024;
    let mut setup = Setup::new(RuntimeKind::Native);
    setup.options.max_message_bytes = limit;
    let running = setup.start().await;
    let mut client = running.client().await;
    let job = &jobs(4, SchemeChoice::Ecdsa, 1)[0];
    let big = v1::VerifyRequest {
        message: vec![1; limit + 1],
        ..verify_request(job)
    };

    let unary = client
        .raw()
        .verify(big.clone())
        .await
        .expect_err("too large");
    assert_eq!(unary.code(), Code::ResourceExhausted, "{unary:?}");

    let batch = v1::SubmitBatchRequest {
        jobs: vec![big.clone()],
    };
    let batch = client
        .raw()
        .submit_batch(batch)
        .await
        .expect_err("too large");
    assert_eq!(batch.code(), Code::ResourceExhausted, "{batch:?}");

    let small = verify_request(job);
    let mut stream = client
        .raw()
        .verify_stream(tokio_stream::iter([small, big]))
        .await
        .expect("stream opens")
        .into_inner();
    let first = stream.message().await.expect("first verdict").expect("one");
    assert_eq!(Some(first.valid), job.expect);
    let error = stream.message().await.expect_err("too large");
    assert_eq!(error.code(), Code::ResourceExhausted, "{error:?}");

    // The server goes on serving.
    let verdict = client.verify(job).await.expect("verify");
    assert_verdict(job, &verdict, "native");
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_past_the_client_deadline_gets_deadline_exceeded() {
    // The only worker is held until both calls have failed, so their work
    // cannot finish within any deadline, however fast the machine. The
    // server's share of the deadline (deadline minus margin) is short; the
    // margin leaves the answer ample time to beat the tonic client's own
    // timer (which would report CANCELLED).
    let mut setup = Setup::new(RuntimeKind::Native);
    setup.workers = 1;
    setup.options.deadline_margin = Duration::from_millis(4_900);
    let running = setup.start().await;
    let gate = WorkerGate::hold(&running.server).await;
    let client = running.client().await;
    let jobs = jobs(5, SchemeChoice::Ecdsa, 200);
    let deadline = Duration::from_secs(5);

    let mut batch = tonic::Request::new(v1::SubmitBatchRequest {
        jobs: jobs.iter().map(verify_request).collect(),
    });
    batch.set_timeout(deadline);
    let error = client
        .raw()
        .submit_batch(batch)
        .await
        .expect_err("deadline");
    assert_eq!(error.code(), Code::DeadlineExceeded, "{error:?}");

    let mut stream = tonic::Request::new(tokio_stream::iter(
        jobs.iter().map(verify_request).collect::<Vec<_>>(),
    ));
    stream.set_timeout(deadline);
    let mut answers = client
        .raw()
        .verify_stream(stream)
        .await
        .expect("stream opens")
        .into_inner();
    // No verdict can come while the worker is held: the deadline is first.
    let error = answers
        .message()
        .await
        .expect_err("the stream ends at the deadline");
    assert_eq!(error.code(), Code::DeadlineExceeded, "{error:?}");
    drop(answers);
    gate.open();
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_never_reached_a_module_does_not_look_like_a_run() {
    // Such verdicts used to carry the server's runtime and `micros: 0`,
    // like a run that took no time.
    let running = Setup::new(RuntimeKind::Wasmtime).start().await;
    let mut raw = running.client().await.raw();
    for (request, reason) in bad_requests() {
        let verdict = raw.verify(request.clone()).await.expect("a verdict");
        let verdict = verdict.get_ref();
        assert_error_verdict(verdict, &request, reason);
        assert_eq!(verdict.runtime, "", "{verdict:?}");
        assert_eq!(verdict.micros, 0.0, "{verdict:?}");
    }
    let job = &jobs(12, SchemeChoice::Ecdsa, 1)[0];
    let verdict = raw.verify(verify_request(job)).await.expect("a verdict");
    assert_verdict(job, verdict.get_ref(), "wasmtime");
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hex_text_sent_as_raw_bytes_gets_a_hint() {
    let running = Setup::new(RuntimeKind::Wasmtime).start().await;
    let mut raw = running.client().await.raw();
    let schnorr = verify_request(&jobs(13, SchemeChoice::Schnorr, 1)[0]);
    let ecdsa = verify_request(&Generator::new(13, SchemeChoice::Ecdsa, 0.0).job());
    let hex = |bytes: &[u8]| hex::encode(bytes).into_bytes();
    let hinted = [
        v1::VerifyRequest {
            public_key: hex(&schnorr.public_key),
            ..schnorr.clone()
        },
        v1::VerifyRequest {
            signature: hex(&schnorr.signature),
            ..schnorr.clone()
        },
        v1::VerifyRequest {
            public_key: hex(&ecdsa.public_key),
            ..ecdsa.clone()
        },
        v1::VerifyRequest {
            signature: hex(&ecdsa.signature),
            ..ecdsa.clone()
        },
    ];
    for request in hinted {
        let verdict = raw.verify(request).await.expect("a verdict").into_inner();
        assert!(!verdict.valid);
        let reason = verdict.reason.unwrap_or_default();
        assert!(reason.contains("hex text"), "{reason}");
    }
    // Twice the length but not hex digits: no hint.
    let not_hex = v1::VerifyRequest {
        public_key: vec![0xee; 64],
        ..schnorr
    };
    let verdict = raw.verify(not_hex).await.expect("a verdict").into_inner();
    let reason = verdict.reason.unwrap_or_default();
    assert!(!reason.contains("hex"), "{reason}");
    running.shutdown().await;
}
