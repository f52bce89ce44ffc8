//! The server–client pipeline end to end: real `redis-server`, in-process
//! servers (each its own consumer, own connections), the real client.

use std::sync::Arc;
use std::time::Duration;

use hotwasm_auth::{AdminToken, AdminTokens, MacKey};
use hotwasm_client::admin::{AdminClient, ConnectOptions};
use hotwasm_client::submit::{Outgoing, ResultsVia, SubmitOptions, submit};
use hotwasm_client::{Summary, jobs};
use hotwasm_jobs::SchemeChoice;
use hotwasm_queue::{JobQueue, MemoryQueue, RedisOptions, RedisQueue, ResultsStreams};
use hotwasm_runtime::RuntimeKind;
use hotwasm_server::consume::{ConsumeOptions, consume};
use hotwasm_server::{Server, ServerConfig};
use hotwasm_tests::RedisServer;
use tokio::sync::oneshot;

/// An in-process server consuming from a queue until stopped.
struct Running {
    server: Arc<Server>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    fn start<Q: JobQueue + ResultsStreams>(
        name: &str,
        queue: Arc<Q>,
        options: ConsumeOptions,
    ) -> Running {
        let mut config = ServerConfig::new(RuntimeKind::Wasmtime);
        config.name = name.to_string();
        config.workers = 1;
        // These tests count verdicts; a deadline must not decide one.
        config.modules.limits = crate::unhurried();
        let server = Server::start(config).expect("server starts");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(consume(Arc::clone(&server), queue, options, async move {
            let _ = stopped.await;
        }));
        Running { server, stop, task }
    }

    async fn stop(self) -> Arc<Server> {
        let _ = self.stop.send(());
        self.task.await.expect("consumer ends cleanly");
        self.server
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

async fn redis(url: &str) -> Arc<RedisQueue> {
    Arc::new(
        RedisQueue::connect(RedisOptions::new(url))
            .await
            .expect("redis reachable"),
    )
}

fn assert_all_answered(summary: &Summary, jobs: usize) {
    assert_eq!(summary.jobs, jobs as u64);
    assert_eq!(summary.verdicts, jobs as u64, "{summary}");
    assert_eq!(summary.missing, 0, "{summary}");
    assert_eq!(summary.mismatch_count, 0, "{summary}");
    assert_eq!(summary.duplicates, 0, "{summary}");
    assert_eq!(summary.unreadable, 0, "{summary}");
    assert_eq!(summary.checked, jobs as u64, "{summary}");
}

fn two_servers_answer_every_job_once(results: ResultsVia) {
    let redis_server = RedisServer::start();
    let jobs = jobs::generate(10_000, SchemeChoice::Mixed, 0.1, 5, &|_| {});
    // The deployment's reply key: servers sign, the client checks.
    let key = MacKey::generate();
    let signing = ConsumeOptions {
        reply_key: Some(key.clone()),
        ..ConsumeOptions::default()
    };
    runtime().block_on(async {
        let a = Running::start("a", redis(&redis_server.url()).await, signing.clone());
        let b = Running::start("b", redis(&redis_server.url()).await, signing);
        let options = SubmitOptions {
            results,
            reply_key: Some(key),
            ..SubmitOptions::new()
        };
        let summary = submit(redis(&redis_server.url()).await, &jobs, &options, &|_| {})
            .await
            .expect("submission runs");
        assert_all_answered(&summary, jobs.len());
        assert_eq!(
            summary.per_server.keys().collect::<Vec<_>>(),
            ["a", "b"],
            "both servers did work: {summary}"
        );
        a.stop().await;
        b.stop().await;
        let stats = redis(&redis_server.url())
            .await
            .stats()
            .await
            .expect("stats");
        assert_eq!(stats.pending, 0, "every job acknowledged");
    });
}

#[test]
fn ten_thousand_jobs_through_redis_with_two_servers_get_one_verdict_each() {
    two_servers_answer_every_job_once(ResultsVia::Stream);
}

#[test]
fn ten_thousand_jobs_through_a_ring_far_smaller_than_the_run() {
    two_servers_answer_every_job_once(ResultsVia::Shm { slots: 64 });
}

#[test]
fn embedded_queue_runs_the_same_pipeline() {
    let jobs = jobs::generate(2_000, SchemeChoice::Mixed, 0.2, 6, &|_| {});
    runtime().block_on(async {
        let queue = Arc::new(MemoryQueue::new());
        let server = Running::start("embedded", Arc::clone(&queue), ConsumeOptions::default());
        let options = SubmitOptions {
            results: ResultsVia::Shm { slots: 128 },
            ..SubmitOptions::new()
        };
        let summary = submit(queue, &jobs, &options, &|_| {})
            .await
            .expect("submission runs");
        assert_all_answered(&summary, jobs.len());
        server.stop().await;
    });
}

#[test]
fn a_paced_submission_keeps_its_schedule_and_answers_every_job() {
    let jobs = jobs::generate(60, SchemeChoice::Mixed, 0.2, 7, &|_| {});
    runtime().block_on(async {
        let queue = Arc::new(MemoryQueue::new());
        let server = Running::start("paced", Arc::clone(&queue), ConsumeOptions::default());
        let options = SubmitOptions {
            results: ResultsVia::Shm { slots: 128 },
            rate: Some(500.0),
            ..SubmitOptions::new()
        };
        let summary = submit(queue, &jobs, &options, &|_| {})
            .await
            .expect("submission runs");
        assert_all_answered(&summary, jobs.len());
        // The 60th job is not due before 59 / 500 s: the run cannot be
        // shorter (a lower bound; sleeping never ends early).
        assert!(
            summary.elapsed >= std::time::Duration::from_millis(118),
            "{:?}",
            summary.elapsed
        );
        assert_eq!(summary.latencies_micros.len(), jobs.len());
        server.stop().await;
    });
}

#[test]
fn malformed_entries_are_dead_lettered_and_malformed_jobs_get_error_verdicts() {
    let redis_server = RedisServer::start();
    runtime().block_on(async {
        let queue = redis(&redis_server.url()).await;
        let server = Running::start("a", Arc::clone(&queue), ConsumeOptions::default());
        // An entry put into the stream by hand: no envelope at all.
        let client = redis::Client::open(redis_server.url()).expect("url");
        let mut connection = client
            .get_multiplexed_async_connection()
            .await
            .expect("connects");
        let _: String = redis::cmd("XADD")
            .arg("hotwasm:jobs")
            .arg("*")
            .arg("junk")
            .arg("1")
            .query_async(&mut connection)
            .await
            .expect("XADD");
        // A job line that is not a job, between good ones.
        let mut jobs = jobs::generate(50, SchemeChoice::Mixed, 0.2, 7, &|_| {});
        jobs.insert(
            20,
            Outgoing {
                line: b"{\"id\": \"broken\", \"scheme\": \"rsa\"}".to_vec(),
                expect: None,
            },
        );
        let options = SubmitOptions {
            results: ResultsVia::Stream,
            ..SubmitOptions::new()
        };
        let summary = submit(Arc::clone(&queue), &jobs, &options, &|_| {})
            .await
            .expect("submission runs");
        assert_eq!(summary.verdicts, 51, "{summary}");
        assert_eq!(
            (summary.missing, summary.mismatch_count),
            (0, 0),
            "{summary}"
        );
        assert_eq!(summary.malformed, 1, "{summary}");
        let server = server.stop().await;
        let stats = queue.stats().await.expect("stats");
        assert_eq!(stats.dead_letters, 1);
        assert_eq!(stats.pending, 0);
        let counted = server
            .stats()
            .dead_lettered
            .load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(counted, 1);
    });
}

#[test]
fn jobs_left_pending_by_a_dead_server_are_reclaimed_and_answered() {
    let redis_server = RedisServer::start();
    let jobs = jobs::generate(300, SchemeChoice::Mixed, 0.1, 8, &|_| {});
    runtime().block_on(async {
        let queue = redis(&redis_server.url()).await;
        let options = SubmitOptions {
            results: ResultsVia::Stream,
            ..SubmitOptions::new()
        };
        // The client submits; a server that is about to die takes 100 jobs
        // and never answers them.
        let client = tokio::spawn({
            let queue = Arc::clone(&queue);
            let jobs = jobs.clone();
            async move { submit(queue, &jobs, &options, &|_| {}).await }
        });
        let mut taken = 0;
        for _ in 0..600 {
            if taken >= 100 {
                break;
            }
            taken += queue
                .fetch("dead", 100 - taken, Duration::from_millis(100))
                .await
                .expect("fetch")
                .len();
        }
        assert_eq!(taken, 100, "the client submitted");
        // A live server reclaims them once they are idle long enough.
        let live = Running::start(
            "live",
            Arc::clone(&queue),
            ConsumeOptions {
                // Long enough that the live server never takes over its
                // own batches in flight, however slow the machine.
                min_idle: Duration::from_secs(2),
                reclaim_every: Duration::from_millis(200),
                ..ConsumeOptions::default()
            },
        );
        let summary = client.await.expect("client task").expect("submission runs");
        assert_all_answered(&summary, jobs.len());
        assert_eq!(summary.per_server.keys().collect::<Vec<_>>(), ["live"]);
        live.stop().await;
        assert_eq!(queue.stats().await.expect("stats").pending, 0);
    });
}

#[test]
fn a_server_rides_out_a_redis_restart() {
    let mut redis_server = RedisServer::start();
    runtime().block_on(async {
        let queue = redis(&redis_server.url()).await;
        let server = Running::start("a", Arc::clone(&queue), ConsumeOptions::default());
        let options = SubmitOptions {
            results: ResultsVia::Stream,
            ..SubmitOptions::new()
        };
        let first = jobs::generate(50, SchemeChoice::Mixed, 0.1, 9, &|_| {});
        let summary = submit(Arc::clone(&queue), &first, &options, &|_| {})
            .await
            .expect("first submission");
        assert_all_answered(&summary, first.len());

        // Redis goes away and comes back empty (no persistence): the
        // server's group is gone; it must recreate it and go on.
        redis_server.restart();
        let second = jobs::generate(50, SchemeChoice::Mixed, 0.1, 10, &|_| {});
        let mut summary = None;
        for _ in 0..50 {
            // A fresh client name per attempt: jobs of a failed attempt
            // answer into that attempt's stream, not this one's.
            let options = SubmitOptions {
                results: ResultsVia::Stream,
                ..SubmitOptions::new()
            };
            match submit(Arc::clone(&queue), &second, &options, &|_| {}).await {
                Ok(s) => {
                    summary = Some(s);
                    break;
                }
                // The client's own connection may need a moment to
                // reconnect; that is the client's error to retry.
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let summary = summary.expect("a submission succeeds after the restart");
        assert_all_answered(&summary, second.len());
        server.stop().await;
    });
}

#[test]
fn a_module_swapped_over_grpc_mid_run_serves_the_rest_of_the_run() {
    let registry = tempfile::tempdir().expect("temp dir");
    let jobs = jobs::generate(3_000, SchemeChoice::Mixed, 0.1, 11, &|_| {});
    let fast = hotwasm_modules::find("schnorr", "fast").expect("built");
    let default = hotwasm_modules::find("schnorr", "default").expect("built");
    runtime().block_on(async {
        let queue = Arc::new(MemoryQueue::new());
        let mut config = ServerConfig::new(RuntimeKind::Wasmtime);
        config.modules.registry = Some(registry.path().to_path_buf());
        config.workers = 1;
        let server = Server::start(config).expect("server starts");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let address = listener.local_addr().expect("address");
        let (stop_grpc, grpc_stopped) = oneshot::channel::<()>();
        let operator = AdminToken::generate("operator").expect("token");
        let grpc = tokio::spawn(hotwasm_server::grpc::serve(
            Arc::clone(&server),
            listener,
            hotwasm_server::grpc::GrpcOptions {
                admin_tokens: AdminTokens::new([&operator]),
                ..hotwasm_server::grpc::GrpcOptions::default()
            },
            async move {
                let _ = grpc_stopped.await;
            },
        ));
        // The serving version and a second one, stored and validated ahead.
        let connect = ConnectOptions {
            token: Some(operator),
            ..ConnectOptions::default()
        };
        let mut admin = AdminClient::connect_with(&format!("http://{address}"), &connect)
            .await
            .expect("connects");
        let first = admin
            .load_module("schnorr", fast.bytes.to_vec(), true)
            .await
            .expect("first version loads");
        let second = admin
            .load_module("schnorr", default.bytes.to_vec(), false)
            .await
            .expect("second version loads");
        assert_eq!(
            (first.state.as_str(), second.state.as_str()),
            ("active", "available")
        );

        // Swap once the run is under way. To make "under way" certain, the
        // server pauses (stops consuming, finishing the batches it has)
        // when a tenth of the verdicts are in, the swap happens, and it
        // consumes the rest: the client's one run spans both versions.
        let under_way = Arc::new(tokio::sync::Notify::new());
        let first_half = tokio::spawn(consume(
            Arc::clone(&server),
            Arc::clone(&queue),
            ConsumeOptions::default(),
            {
                let under_way = Arc::clone(&under_way);
                async move { under_way.notified().await }
            },
        ));
        let client = tokio::spawn({
            let queue = Arc::clone(&queue);
            let under_way = Arc::clone(&under_way);
            let jobs = jobs.clone();
            async move {
                let options = SubmitOptions {
                    results: ResultsVia::Shm { slots: 256 },
                    ..SubmitOptions::new()
                };
                submit(queue, &jobs, &options, &move |received| {
                    if received >= 300 {
                        under_way.notify_one();
                    }
                })
                .await
            }
        });
        tokio::time::timeout(Duration::from_secs(120), first_half)
            .await
            .expect("a tenth of the verdicts arrive")
            .expect("consumer ends");
        let activated = admin
            .activate_module(&second.id)
            .await
            .expect("activates over gRPC");
        assert_eq!(activated.id, second.id);
        let (stop, stopped) = oneshot::channel::<()>();
        let consumer = tokio::spawn(consume(
            Arc::clone(&server),
            Arc::clone(&queue),
            ConsumeOptions::default(),
            async move {
                let _ = stopped.await;
            },
        ));
        let summary = client.await.expect("client task").expect("submission runs");
        assert_all_answered(&summary, jobs.len());
        for version in [&first.id, &second.id] {
            assert!(
                summary.per_module.get(version).is_some_and(|n| *n > 0),
                "{version} served part of the run: {summary}"
            );
        }
        let _ = stop.send(());
        consumer.await.expect("consumer ends");
        let _ = stop_grpc.send(());
        grpc.await.expect("grpc task").expect("grpc ends cleanly");
    });
}

/// Anyone who can write to Redis can write into a client's results stream:
/// replies not signed with the reply key (a flipped verdict with the right
/// job digest, one tagged with another key) are dropped and counted, and
/// every job gets the server's verdict.
#[test]
fn forged_replies_in_the_results_stream_are_dropped_and_counted() {
    let redis_server = RedisServer::start();
    let jobs = jobs::generate(40, SchemeChoice::Mixed, 0.3, 21, &|_| {});
    let key = MacKey::generate();
    runtime().block_on(async {
        let queue = redis(&redis_server.url()).await;
        let options = SubmitOptions {
            results: ResultsVia::Stream,
            reply_key: Some(key.clone()),
            ..SubmitOptions::new()
        };
        let stream = hotwasm_client::submit::results_stream(&options.client);
        let client = {
            let (queue, jobs, options) = (Arc::clone(&queue), jobs.clone(), options.clone());
            tokio::spawn(async move { submit(queue, &jobs, &options, &|_| {}).await })
        };
        // The attacker, before any server runs: one forged reply per job
        // (the verdict flipped, the job digest right: the job stream is
        // readable), and one signed with a key of its own.
        let mut connection = redis::Client::open(redis_server.url())
            .expect("url")
            .get_multiplexed_async_connection()
            .await
            .expect("connects");
        while !redis::cmd("EXISTS")
            .arg(&stream)
            .query_async::<bool>(&mut connection)
            .await
            .expect("EXISTS")
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut forged = Vec::new();
        for (seq, job) in jobs.iter().enumerate() {
            let mut reply = hotwasm_queue::Reply::answering(
                seq as u64,
                "a".into(),
                hotwasm_jobs::Verdict {
                    id: None,
                    valid: job.expect != Some(true),
                    reason: None,
                    runtime: "wasmtime".into(),
                    module: Some("schnorr@forged".into()),
                    micros: 1.0,
                },
                &job.line,
            );
            if seq == 0 {
                reply.sign(&MacKey::generate());
            }
            forged.push(reply);
        }
        queue.publish(&stream, &forged).await.expect("XADD");

        let server = Running::start(
            "a",
            Arc::clone(&queue),
            ConsumeOptions {
                reply_key: Some(key),
                ..ConsumeOptions::default()
            },
        );
        let summary = client.await.expect("client task").expect("submission runs");
        assert_all_answered(&summary, jobs.len());
        assert_eq!(summary.forged, jobs.len() as u64, "{summary}");
        assert_eq!(
            summary
                .per_module
                .keys()
                .filter(|m| m.contains("forged"))
                .count(),
            0
        );
        server.stop().await;
    });
}

/// A job may name any reply address, another client's ring included (a
/// confused deputy: the server writes there for whoever asks). The ring's
/// owner drops those replies (their job digest is not that of its job
/// under that sequence number), counts them, and gets its own verdicts.
#[test]
fn replies_to_jobs_another_client_sent_are_dropped_as_misdirected() {
    let redis_server = RedisServer::start();
    let rings = tempfile::tempdir().expect("ring dir");
    let mine = jobs::generate(30, SchemeChoice::Mixed, 0.3, 22, &|_| {});
    let theirs = jobs::generate(30, SchemeChoice::Mixed, 0.0, 23, &|_| {});
    let key = MacKey::generate();
    runtime().block_on(async {
        let queue = redis(&redis_server.url()).await;
        let options = SubmitOptions {
            results: ResultsVia::Shm { slots: 64 },
            ring_dir: rings.path().to_path_buf(),
            reply_key: Some(key.clone()),
            ..SubmitOptions::new()
        };
        // The attacker's jobs, queued first, name the victim's ring and
        // the victim's sequence numbers.
        let victim_ring = hotwasm_queue::ReplyTo::Shm(options.client.clone());
        let envelopes: Vec<hotwasm_queue::Envelope> = theirs
            .iter()
            .enumerate()
            .map(|(seq, job)| hotwasm_queue::Envelope {
                seq: seq as u64,
                job: job.line.clone(),
                reply: victim_ring.clone(),
            })
            .collect();
        queue.submit(&envelopes).await.expect("XADD");
        let client = {
            let (queue, jobs, options) = (Arc::clone(&queue), mine.clone(), options.clone());
            tokio::spawn(async move { submit(queue, &jobs, &options, &|_| {}).await })
        };
        // The server starts once the victim's ring exists and its jobs are
        // queued behind the attacker's.
        while queue.stats().await.expect("stats").length < (theirs.len() + mine.len()) as u64 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let server = Running::start(
            "a",
            Arc::clone(&queue),
            ConsumeOptions {
                reply_key: Some(key),
                ring_dir: rings.path().to_path_buf(),
                ..ConsumeOptions::default()
            },
        );
        let summary = client.await.expect("client task").expect("submission runs");
        assert_all_answered(&summary, mine.len());
        assert_eq!(summary.misdirected, theirs.len() as u64, "{summary}");
        server.stop().await;
    });
}
