//! The contract on Redis Streams against a real `redis-server`, and what
//! only Redis has: entries added by hand, trimming, blocking reads beside
//! other commands, Redis away at start and restarted mid-run.

// Helpers called by the tests: a failed step is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use hotwasm_queue::{EntryError, JobQueue, QueueError, RedisOptions, RedisQueue, ResultsStreams};
use hotwasm_tests::RedisServer;
use redis::Value;

use crate::contract::{MIN_IDLE, envelope, reply};

fn options(server: &RedisServer) -> RedisOptions {
    let mut options = RedisOptions::new(server.url());
    options.connect_timeout = Duration::from_secs(2);
    options.response_timeout = Duration::from_secs(2);
    options.reconnect_retries = 2;
    options.reconnect_max_delay = Duration::from_millis(200);
    options
}

async fn fresh() -> (RedisQueue, RedisServer) {
    let server = RedisServer::start();
    let queue = RedisQueue::connect(options(&server)).await.unwrap();
    (queue, server)
}

crate::contract_tests!(fresh());

/// A plain connection for raw commands.
async fn raw(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// The entries of a stream as `(id, [(field, value)])`, values as text.
async fn xrange(server: &RedisServer, key: &str) -> Vec<(String, Vec<(String, String)>)> {
    let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query_async(&mut raw(server).await)
        .await
        .unwrap();
    entries
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_entry_is_a_delivery_with_a_reason_and_can_be_dead_lettered() {
    let (queue, server) = fresh().await;
    queue.submit(&[envelope(1)]).await.unwrap();
    let _: String = redis::cmd("XADD")
        .arg("hotwasm:jobs")
        .arg("*")
        .arg("junk")
        .arg("1")
        .query_async(&mut raw(&server).await)
        .await
        .unwrap();
    queue.submit(&[envelope(3)]).await.unwrap();

    let got = queue.fetch("a", 10, Duration::ZERO).await.unwrap();
    assert_eq!(got.len(), 3, "the bad entry does not stop the batch");
    assert_eq!(got[0].envelope, Ok(envelope(1)));
    assert_eq!(got[2].envelope, Ok(envelope(3)));
    let reason = got[1].envelope.clone().unwrap_err().to_string();
    assert!(
        reason.contains("`seq`") && reason.contains("junk"),
        "{reason}"
    );

    queue.dead_letter(&got[1], &reason).await.unwrap();
    queue
        .ack(&[got[0].id.clone(), got[2].id.clone()])
        .await
        .unwrap();
    let stats = queue.stats().await.unwrap();
    assert_eq!((stats.pending, stats.dead_letters), (0, 1));

    let dead = xrange(&server, "hotwasm:jobs:dead").await;
    let fields = &dead[0].1;
    assert_eq!(field(fields, "junk"), Some("1"), "original fields kept");
    assert_eq!(field(fields, "reason"), Some(reason.as_str()));
    assert_eq!(field(fields, "original_id"), Some(got[1].id.as_str()));
    assert_eq!(field(fields, "deliveries"), Some("1"));
}

/// The reason entry lists are parsed by hand: a typed reply keyed by
/// `String` would refuse the whole batch for this one entry, every fetch
/// and every reclaim of it, instead of dead-lettering it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_with_a_binary_field_name_does_not_stop_fetch_or_reclaim() {
    let (queue, server) = fresh().await;
    queue.submit(&[envelope(1)]).await.unwrap();
    let bad: String = redis::cmd("XADD")
        .arg("hotwasm:jobs")
        .arg("*")
        .arg(&b"\xff\xfe"[..])
        .arg("1")
        .query_async(&mut raw(&server).await)
        .await
        .unwrap();
    queue.submit(&[envelope(3)]).await.unwrap();

    let got = queue.fetch("dies", 10, Duration::ZERO).await.unwrap();
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[0].envelope, Ok(envelope(1)));
    assert_eq!(got[2].envelope, Ok(envelope(3)));
    let reason = got[1].envelope.clone().unwrap_err().to_string();
    assert!(
        reason.contains(&bad) && reason.contains("`seq`"),
        "{reason}"
    );

    tokio::time::sleep(MIN_IDLE * 3).await;
    let reclaimed = queue.reclaim("lives", MIN_IDLE, 5, 10).await.unwrap();
    assert_eq!(reclaimed.len(), 3, "{reclaimed:?}");
    assert!(reclaimed[1].envelope.is_err());
}

/// A stranger who can `XADD` could make every server hold Redis's 512 MB
/// bulk limit per entry, a batch at a time: entries over the limit come
/// back as their size only, from fetch and from reclaim, and their
/// dead letter keeps the original whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_over_the_size_limit_come_back_as_their_size_only() {
    let server = RedisServer::start();
    let mut options = options(&server);
    options.max_entry_bytes = 64 * 1024;
    let queue = RedisQueue::connect(options).await.unwrap();
    let huge = vec![b'7'; 8 * 1024 * 1024];
    queue.submit(&[envelope(1)]).await.unwrap();
    let mut connection = raw(&server).await;
    for seq in [2, 3] {
        let _: String = redis::cmd("XADD")
            .arg("hotwasm:jobs")
            .arg("*")
            .arg("seq")
            .arg(seq)
            .arg("reply")
            .arg("stream:r")
            .arg("job")
            .arg(&huge[..])
            .query_async(&mut connection)
            .await
            .unwrap();
    }
    // Just over the limit, in the `reply` field this time.
    let _: String = redis::cmd("XADD")
        .arg("hotwasm:jobs")
        .arg("*")
        .arg("seq")
        .arg(4)
        .arg("reply")
        .arg(&huge[..64 * 1024])
        .arg("job")
        .arg("{}")
        .query_async(&mut connection)
        .await
        .unwrap();
    queue.submit(&[envelope(5)]).await.unwrap();

    let got = queue.fetch("dies", 10, Duration::ZERO).await.unwrap();
    assert_eq!(got.len(), 5, "{got:?}");
    assert_eq!(got[0].envelope, Ok(envelope(1)));
    assert_eq!(got[4].envelope, Ok(envelope(5)));
    for (delivery, bytes) in [
        (&got[1], 8 * 1024 * 1024 + 20),
        (&got[2], 8 * 1024 * 1024 + 20),
    ] {
        match &delivery.envelope {
            Err(EntryError::TooLarge {
                bytes: b, limit, ..
            }) => assert_eq!((*b, *limit), (bytes, 64 * 1024)),
            other => panic!("{other:?}"),
        }
    }
    let reason = got[3].envelope.clone().unwrap_err().to_string();
    assert!(
        reason.contains("65550 bytes, over the limit of 65536"),
        "{reason}"
    );

    tokio::time::sleep(MIN_IDLE * 3).await;
    let reclaimed = queue.reclaim("lives", MIN_IDLE, 5, 10).await.unwrap();
    assert_eq!(reclaimed.len(), 5, "{reclaimed:?}");
    assert!(matches!(
        reclaimed[1].envelope,
        Err(EntryError::TooLarge { .. })
    ));
    assert_eq!(reclaimed[4].envelope, Ok(envelope(5)));

    queue.dead_letter(&reclaimed[1], &reason).await.unwrap();
    type Entry = (String, Vec<(String, Vec<u8>)>);
    let dead: Vec<Entry> = redis::cmd("XRANGE")
        .arg("hotwasm:jobs:dead")
        .arg("-")
        .arg("+")
        .query_async(&mut connection)
        .await
        .unwrap();
    let job = dead[0].1.iter().find(|(k, _)| k == "job").unwrap();
    assert_eq!(
        job.1.len(),
        huge.len(),
        "the dead letter keeps the job whole"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reclaimed_past_the_limit_lands_in_dead_letters_with_original_fields() {
    let (queue, server) = fresh().await;
    queue.submit(&[envelope(5)]).await.unwrap();
    let first = queue.fetch("a", 10, Duration::ZERO).await.unwrap();
    tokio::time::sleep(MIN_IDLE * 3).await;
    assert!(
        queue
            .reclaim("b", MIN_IDLE, 1, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let dead = xrange(&server, "hotwasm:jobs:dead").await;
    assert_eq!(dead.len(), 1);
    let fields = &dead[0].1;
    assert_eq!(field(fields, "seq"), Some("5"));
    assert_eq!(field(fields, "original_id"), Some(first[0].id.as_str()));
    assert_eq!(field(fields, "deliveries"), Some("2"));
    assert!(field(fields, "reason").is_some_and(|r| r.contains("limit of 1")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trimming_keeps_every_unacknowledged_entry() {
    let server = RedisServer::start();
    let mut options = options(&server);
    options.trim_every = 0; // trimmed by hand below
    let queue = RedisQueue::connect(options).await.unwrap();
    queue
        .submit(&(0..10).map(envelope).collect::<Vec<_>>())
        .await
        .unwrap();
    let taken = queue.fetch("dies", 6, Duration::ZERO).await.unwrap();
    // Acknowledge 0, 1, 2 and 4; 3 and 5 stay pending, 6..9 undelivered.
    let acked: Vec<String> = [0, 1, 2, 4].iter().map(|&i| taken[i].id.clone()).collect();
    queue.ack(&acked).await.unwrap();

    assert_eq!(queue.trim().await.unwrap(), 3);
    let left: Vec<String> = xrange(&server, "hotwasm:jobs")
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(left.len(), 7);
    assert!(!left.contains(&taken[0].id) && !left.contains(&taken[2].id));
    assert!(left.contains(&taken[3].id) && left.contains(&taken[5].id));

    let rest = queue.fetch("b", 10, Duration::ZERO).await.unwrap();
    assert_eq!(
        rest.iter()
            .map(|d| d.envelope.clone().unwrap().seq)
            .collect::<Vec<_>>(),
        [6, 7, 8, 9]
    );
    tokio::time::sleep(MIN_IDLE * 3).await;
    let reclaimed = queue.reclaim("b", MIN_IDLE, 5, 10).await.unwrap();
    let mut seqs: Vec<u64> = reclaimed
        .iter()
        .map(|d| d.envelope.clone().unwrap().seq)
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, [3, 5, 6, 7, 8, 9]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_trim_the_stream_automatically() {
    let server = RedisServer::start();
    let mut options = options(&server);
    options.trim_every = 4;
    let queue = RedisQueue::connect(options).await.unwrap();
    queue
        .submit(&(0..6).map(envelope).collect::<Vec<_>>())
        .await
        .unwrap();
    let taken = queue.fetch("a", 5, Duration::ZERO).await.unwrap();
    let ids: Vec<String> = taken.iter().map(|d| d.id.clone()).collect();
    queue.ack(&ids).await.unwrap();
    // All five delivered ones are acknowledged; the sixth was never
    // delivered and stays.
    let stats = queue.stats().await.unwrap();
    assert_eq!((stats.length, stats.pending), (1, 0));
    let last = queue.fetch("a", 5, Duration::ZERO).await.unwrap();
    assert_eq!(last[0].envelope, Ok(envelope(5)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_results_entry_comes_back_as_an_error() {
    let (queue, server) = fresh().await;
    let stream = "hotwasm:results:c2";
    queue.create_stream(stream).await.unwrap();
    queue.publish(stream, &[reply(1)]).await.unwrap();
    let _: String = redis::cmd("XADD")
        .arg(stream)
        .arg("*")
        .arg("reply")
        .arg("not json")
        .query_async(&mut raw(&server).await)
        .await
        .unwrap();
    let _: String = redis::cmd("XADD")
        .arg(stream)
        .arg("*")
        .arg("other")
        .arg("x")
        .query_async(&mut raw(&server).await)
        .await
        .unwrap();
    queue.publish(stream, &[reply(2)]).await.unwrap();
    let (got, _) = queue
        .read_replies(stream, "0", 10, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(got.len(), 4);
    assert_eq!(got[0], Ok(reply(1)));
    assert!(
        got[1]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("not a reply")
    );
    assert!(got[2].as_ref().unwrap_err().to_string().contains("`reply`"));
    assert_eq!(got[3], Ok(reply(2)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_fetch_does_not_hold_up_other_commands() {
    let (queue, _server) = fresh().await;
    let blocked = {
        let queue = queue.clone();
        tokio::spawn(async move { queue.fetch("a", 10, Duration::from_secs(30)).await })
    };
    let also_blocked = {
        let queue = queue.clone();
        tokio::spawn(async move { queue.fetch("b", 10, Duration::from_secs(30)).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    queue.stats().await.unwrap();
    assert!(!blocked.is_finished() && !also_blocked.is_finished());
    queue.submit(&[envelope(1), envelope(2)]).await.unwrap();
    let mut got = blocked.await.unwrap().unwrap();
    if got.len() < 2 {
        got.extend(also_blocked.await.unwrap().unwrap());
    }
    assert_eq!(got.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_redis_is_a_clear_error() {
    // A listener nobody accepts on: the connection opens, Redis never
    // answers. Held for the whole test, so no other process can take the
    // port meanwhile.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let mut options = RedisOptions::new(format!("redis://:hunter2@127.0.0.1:{port}"));
    options.connect_timeout = Duration::from_millis(500);
    let err = RedisQueue::connect(options).await.unwrap_err();
    assert!(matches!(err, QueueError::Unreachable { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(message.contains("redis-server"), "{message}");
    assert!(!message.contains("hunter2"), "password leaked: {message}");

    let err = RedisQueue::connect(RedisOptions::new("http://nope"))
        .await
        .unwrap_err();
    assert!(matches!(err, QueueError::InvalidUrl { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_fails_operations_then_recovers_and_recreates_the_group() {
    let (queue, mut server) = fresh().await;
    queue.submit(&[envelope(1)]).await.unwrap();
    assert_eq!(queue.fetch("a", 10, Duration::ZERO).await.unwrap().len(), 1);

    server.stop();
    assert!(queue.submit(&[envelope(2)]).await.is_err());
    assert!(
        queue
            .fetch("a", 10, Duration::from_millis(100))
            .await
            .is_err()
    );
    assert!(queue.stats().await.is_err());

    server.restart(); // same port, empty: stream and group are gone
    let mut recovered = false;
    for _ in 0..100 {
        if queue.delete_stream("hotwasm:probe").await.is_ok() {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "no command worked again after the restart");

    // The client submits before any server touched the group: the stream
    // exists, the group does not, and the fetch recreates it from 0.
    queue.submit(&[envelope(3), envelope(4)]).await.unwrap();
    let groups: Value = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg("hotwasm:jobs")
        .query_async(&mut raw(&server).await)
        .await
        .unwrap();
    assert_eq!(groups, Value::Array(vec![]), "the restart lost the group");
    let got = queue
        .fetch("a", 10, Duration::from_millis(100))
        .await
        .unwrap();
    assert_eq!(
        got.iter()
            .map(|d| d.envelope.clone().unwrap().seq)
            .collect::<Vec<_>>(),
        [3, 4]
    );
    queue
        .ack(&got.iter().map(|d| d.id.clone()).collect::<Vec<_>>())
        .await
        .unwrap();
    assert_eq!(queue.stats().await.unwrap().pending, 0);
}

/// A Redis with a password: without it every command is refused with a
/// clear error; with it (from the options, not the URL) the queue works,
/// and the password never shows in `Debug`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_protected_redis_needs_the_password() {
    let server = RedisServer::start_with(vec!["--requirepass".into(), "s3cret-pass".into()]);
    let error = RedisQueue::connect(options(&server))
        .await
        .expect_err("no password");
    assert!(
        error.to_string().contains("NOAUTH") || error.to_string().contains("Authentication"),
        "{error}"
    );

    let mut with_password = options(&server);
    with_password.password = Some(hotwasm_queue::Password("s3cret-pass".into()));
    assert!(!format!("{with_password:?}").contains("s3cret"));
    let queue = RedisQueue::connect(with_password).await.unwrap();
    queue.submit(&[envelope(1)]).await.unwrap();
    let got = queue.fetch("a", 10, Duration::ZERO).await.unwrap();
    assert_eq!(got[0].envelope, Ok(envelope(1)));

    // An ACL user of its own, with only what a server needs.
    let mut admin = redis::Client::open(format!(
        "redis+unix://{}?pass=s3cret-pass",
        server.socket().display()
    ))
    .unwrap()
    .get_multiplexed_async_connection()
    .await
    .unwrap();
    let _: () = redis::cmd("ACL")
        .arg(
            &[
                "SETUSER",
                "hotwasm",
                "on",
                ">worker-pass",
                "~hotwasm:*",
                "+@all",
            ][..],
        )
        .query_async(&mut admin)
        .await
        .unwrap();
    let mut as_user = options(&server);
    as_user.username = Some("hotwasm".into());
    as_user.password = Some(hotwasm_queue::Password("worker-pass".into()));
    let queue = RedisQueue::connect(as_user).await.unwrap();
    assert_eq!(queue.stats().await.unwrap().pending, 1);
}

/// Redis over TLS (`rediss://`), its certificate trusted through a CA
/// file; without the CA the handshake is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_over_tls_is_reached_through_its_ca() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let certs = tempfile::tempdir().unwrap();
    let cert = certs.path().join("redis.crt");
    let key = certs.path().join("redis.key");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let _server = RedisServer::start_with(vec![
        "--tls-port".into(),
        port.to_string(),
        "--tls-cert-file".into(),
        cert.display().to_string(),
        "--tls-key-file".into(),
        key.display().to_string(),
        "--tls-auth-clients".into(),
        "no".into(),
        "--bind".into(),
        "127.0.0.1".into(),
    ]);
    let mut tls = RedisOptions::new(format!("rediss://localhost:{port}"));
    tls.connect_timeout = Duration::from_secs(2);
    tls.reconnect_retries = 0;
    let untrusted = RedisQueue::connect(tls.clone())
        .await
        .expect_err("a certificate nobody vouches for");
    assert!(
        matches!(untrusted, QueueError::Unreachable { .. }),
        "{untrusted}"
    );

    tls.tls_ca_pem = Some(certified.cert.pem().into_bytes());
    let queue = RedisQueue::connect(tls).await.unwrap();
    queue.submit(&[envelope(1), envelope(2)]).await.unwrap();
    let got = queue.fetch("a", 10, Duration::ZERO).await.unwrap();
    assert_eq!(got.len(), 2);
    let ids: Vec<String> = got.iter().map(|d| d.id.clone()).collect();
    queue.ack(&ids).await.unwrap();
    assert_eq!(queue.stats().await.unwrap().pending, 0);
}

/// The consumers of the group, by name, with how many entries each holds.
async fn consumers(server: &RedisServer) -> Vec<(String, u64)> {
    let infos: Vec<std::collections::HashMap<String, Value>> = redis::cmd("XINFO")
        .arg("CONSUMERS")
        .arg("hotwasm:jobs")
        .arg("hotwasm")
        .query_async(&mut raw(server).await)
        .await
        .unwrap();
    let mut out: Vec<(String, u64)> = infos
        .into_iter()
        .map(|info| {
            let name: String = redis::from_redis_value(info["name"].clone()).unwrap();
            let pending: u64 = redis::from_redis_value(info["pending"].clone()).unwrap();
            (name, pending)
        })
        .collect();
    out.sort();
    out
}

/// A sweep that has seen the whole pending list removes the consumers that
/// have been idle past `forget_consumers_after` with nothing pending, and
/// keeps one that still holds a job and the sweeper itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_forgets_consumers_long_idle_with_nothing_pending() {
    const FORGET: Duration = Duration::from_millis(500);
    let server = RedisServer::start();
    let mut options = options(&server);
    options.forget_consumers_after = Some(FORGET);
    let queue = RedisQueue::connect(options).await.unwrap();
    queue
        .submit(&[envelope(1), envelope(2), envelope(3)])
        .await
        .unwrap();
    let held = queue.fetch("holds-one", 1, Duration::ZERO).await.unwrap();
    assert_eq!(held.len(), 1);
    // A server that answered its last job and went away, and the sweeper,
    // as idle, which never forgets itself.
    for name in ["gone", "sweeper"] {
        let done = queue.fetch(name, 1, Duration::ZERO).await.unwrap();
        queue.ack(&[done[0].id.clone()]).await.unwrap();
    }
    assert_eq!(
        consumers(&server).await,
        [
            ("gone".to_string(), 0),
            ("holds-one".to_string(), 1),
            ("sweeper".to_string(), 0)
        ]
    );
    tokio::time::sleep(FORGET * 2).await;
    // Nothing idle past an hour: the sweep claims nothing, sees the whole
    // list, and forgets.
    let page = queue
        .reclaim("sweeper", Duration::from_secs(3600), 5, 64)
        .await
        .unwrap();
    assert!(page.is_empty());
    assert_eq!(
        consumers(&server).await,
        [("holds-one".to_string(), 1), ("sweeper".to_string(), 0)],
        "the idle consumer with nothing pending is gone"
    );
    // Once its job is acknowledged, the other one goes too.
    queue.ack(&[held[0].id.clone()]).await.unwrap();
    tokio::time::sleep(FORGET * 2).await;
    queue
        .reclaim("sweeper", Duration::from_secs(3600), 5, 64)
        .await
        .unwrap();
    assert_eq!(consumers(&server).await, [("sweeper".to_string(), 0)]);
}
