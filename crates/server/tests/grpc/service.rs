//! What surrounds the API: health, reflection, shutdown, connecting.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_serving_then_not_serving_during_shutdown() {
    let running = Setup::new(RuntimeKind::Native).start().await;
    let mut health = HealthClient::new(running.channel().await);
    for service in ["", grpc::SERVICE_NAME] {
        let answer = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("check");
        assert_eq!(
            answer.get_ref().status(),
            ServingStatus::Serving,
            "{service:?}"
        );
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "nope.v1.Nothing".into(),
        })
        .await
        .expect_err("unknown service");
    assert_eq!(unknown.code(), Code::NotFound);

    let mut watch = health
        .watch(HealthCheckRequest {
            service: grpc::SERVICE_NAME.into(),
        })
        .await
        .expect("watch")
        .into_inner();
    let first = watch.message().await.expect("watch").expect("a status");
    assert_eq!(first.status(), ServingStatus::Serving);
    let _ = running.stop.send(());
    let next = watch.message().await.expect("watch").expect("a status");
    assert_eq!(next.status(), ServingStatus::NotServing);
    // A watch never ends by itself; the client going away lets the drain finish.
    drop(watch);
    drop(health);
    running
        .serving
        .await
        .expect("serve task")
        .expect("serve ends cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_the_services() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let running = Setup::new(RuntimeKind::Native).start().await;
    let mut reflection = ServerReflectionClient::new(running.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection")
        .into_inner();
    let answer = answers
        .message()
        .await
        .expect("answer")
        .expect("one answer");
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("not a service list: {answer:?}");
    };
    let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&grpc::SERVICE_NAME), "{names:?}");
    assert!(names.contains(&"grpc.health.v1.Health"), "{names:?}");
    drop(answers);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_an_in_flight_batch() {
    let mut setup = Setup::new(RuntimeKind::Native);
    setup.workers = 1;
    let running = setup.start().await;
    // With the only worker held, no job of the batch can finish before the
    // gate opens, which is after the shutdown has begun.
    let gate = WorkerGate::hold(&running.server).await;
    let mut client = running.client().await;
    let jobs = jobs(7, SchemeChoice::Mixed, 400);
    // First in the batch, a job without an id: the server counts it as
    // malformed the moment it starts on the batch, which says the call
    // has arrived.
    let marker = Job {
        id: String::new(),
        ..jobs[0].clone()
    };
    let batch = {
        let mut sent = vec![marker.clone()];
        sent.extend(jobs.iter().cloned());
        tokio::spawn(async move { client.submit_batch(&sent).await })
    };
    let malformed = &running.server.stats().malformed;
    wait_until("the server starts on the batch", async || {
        malformed.load(Ordering::Relaxed) > 0
    })
    .await;

    let _ = running.stop.send(());
    // The listener closes once the shutdown is under way.
    wait_until("the server refuses new connections", async || {
        AdminClient::connect(&running.url).await.is_err()
    })
    .await;
    assert!(
        !batch.is_finished(),
        "the batch must be in flight when the shutdown begins"
    );
    gate.open();

    let verdicts = batch
        .await
        .expect("batch task")
        .expect("the batch completes");
    assert_eq!(verdicts.len(), jobs.len() + 1);
    assert_error_verdict(&verdicts[0], &verify_request(&marker), "id is empty");
    for (job, verdict) in jobs.iter().zip(&verdicts[1..]) {
        assert_verdict(job, verdict, "native");
    }
    running
        .serving
        .await
        .expect("serve task")
        .expect("serve ends cleanly");
    // Stopped: new connections are refused with a clear error.
    let error = AdminClient::connect(&running.url)
        .await
        .expect_err("stopped");
    assert!(matches!(error, AdminError::Connect { .. }), "{error}");
    assert!(error.to_string().contains(&running.url), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_to_nothing_is_a_clear_error() {
    for bad in [
        "not a url",
        "127.0.0.1:50051",
        "nonsense",
        "https://127.0.0.1:1",
    ] {
        let error = AdminClient::connect(bad).await.expect_err("bad url");
        assert!(matches!(error, AdminError::BadUrl { .. }), "{bad}: {error}");
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    drop(listener);
    let error = AdminClient::connect(&url).await.expect_err("nothing there");
    assert!(matches!(error, AdminError::Connect { .. }), "{error}");
    let text = error.to_string();
    assert!(
        text.contains(&url) && text.contains("hotwasm serve"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_ends_its_stream_with_not_found_for_an_unknown_symbol() {
    // What tonic-reflection decides (the README says so): no answer
    // message, the stream ends with NOT_FOUND.
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;

    let running = Setup::new(RuntimeKind::Native).start().await;
    let mut reflection = ServerReflectionClient::new(running.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol(
            "nope.v1.Nothing".into(),
        )),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection")
        .into_inner();
    let error = answers.message().await.expect_err("unknown symbol");
    assert_eq!(error.code(), Code::NotFound, "{error:?}");
    drop(answers);
    running.shutdown().await;
}

/// A message shaped like `VerifyRequest` whose `scheme` (field 2, a string
/// there) is not UTF-8: bytes the server cannot decode.
#[derive(Clone, PartialEq, prost::Message)]
struct NotUtf8Scheme {
    #[prost(bytes = "vec", tag = "2")]
    scheme: Vec<u8>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_protobuf_is_internal() {
    // What tonic decides (the README says so): a request that is not valid
    // protobuf never reaches the service; tonic answers INTERNAL.
    let running = Setup::new(RuntimeKind::Native).start().await;
    let mut grpc = tonic::client::Grpc::new(running.channel().await);
    grpc.ready().await.expect("ready");
    let status = grpc
        .unary(
            tonic::Request::new(NotUtf8Scheme {
                scheme: vec![0xff, 0xfe],
            }),
            tonic::codegen::http::uri::PathAndQuery::from_static("/hotwasm.v1.Verifier/Verify"),
            tonic_prost::ProstCodec::<NotUtf8Scheme, v1::Verdict>::default(),
        )
        .await
        .expect_err("undecodable");
    assert_eq!(status.code(), Code::Internal, "{status:?}");
    // The server goes on.
    let job = &jobs(14, SchemeChoice::Schnorr, 1)[0];
    let verdict = running.client().await.verify(job).await.expect("verify");
    assert_verdict(job, &verdict, "native");
    running.shutdown().await;
}
