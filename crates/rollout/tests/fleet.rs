//! The fleet's records on a real redis-server: compare-and-set, counts
//! that a repeated report does not inflate, module bytes that must be
//! what they claim, a damaged record that does not stop the others.

use hotwasm_queue::RedisOptions;
use hotwasm_rollout::commands::{self, TrialParams};
use hotwasm_rollout::state::{Mode, TrialTotals, Why};
use hotwasm_rollout::{Fleet, FleetError};
use hotwasm_tests::RedisServer;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio")
}

async fn fleet(redis: &RedisServer) -> Fleet {
    Fleet::connect(&RedisOptions::new(redis.url()), "test:fleet")
        .await
        .expect("connects")
}

fn built(variant: &str) -> String {
    let module = hotwasm_modules::find("schnorr", variant).expect("built");
    format!("schnorr@{}", module.hash())
}

#[test]
fn two_changes_made_from_one_state_do_not_both_land() {
    let redis = RedisServer::start();
    runtime().block_on(async {
        let fleet = fleet(&redis).await;
        let (v1, v2) = (built("fast"), built("fast-opt-s"));
        commands::activate(&fleet, &v1, "a").await.expect("first");
        let params = TrialParams {
            mode: Mode::Shadow { sample: 1.0 },
            promote_after: 10,
            max_error_rate: 0.0,
            max_p99_ms: None,
            compare_reason: false,
        };
        let state = commands::start_trial(&fleet, &v2, &params, "a")
            .await
            .expect("trial");
        let rollout = state.rollout.expect("stored").id;
        // Two servers decide the same end at once: one lands.
        let (first, second) = tokio::join!(
            commands::end_trial(&fleet, "schnorr", &rollout, Why::Promoted, "", "server a"),
            commands::end_trial(&fleet, "schnorr", &rollout, Why::Aborted, "", "server b"),
        );
        let landed = [first.expect("a"), second.expect("b")];
        assert_eq!(landed.iter().filter(|l| **l).count(), 1, "{landed:?}");
        let state = fleet.state("schnorr").await.expect("state");
        assert!(state.rollout.is_none());
        assert_eq!(state.rev, 3);
        // A second trial with the same candidate gets another id.
        let again = commands::start_trial(&fleet, &v2, &params, "a").await;
        if let Ok(again) = again {
            assert_ne!(again.rollout.expect("stored").id, rollout);
        }
    });
}

#[test]
fn re_activating_the_active_version_keeps_the_one_to_roll_back_to() {
    let redis = RedisServer::start();
    runtime().block_on(async {
        let fleet = fleet(&redis).await;
        let (v1, v2) = (built("fast"), built("fast-opt-s"));
        commands::activate(&fleet, &v1, "a").await.expect("v1");
        commands::activate(&fleet, &v2, "a").await.expect("v2");
        let params = TrialParams {
            mode: Mode::Canary { fraction: 0.1 },
            promote_after: 10,
            max_error_rate: 0.0,
            max_p99_ms: None,
            compare_reason: false,
        };
        commands::start_trial(&fleet, &v1, &params, "a")
            .await
            .expect("trial");
        let state = commands::activate(&fleet, &v2, "a").await.expect("ends it");
        assert!(state.rollout.is_none());
        assert_eq!(state.previous.as_deref(), Some(v1.as_str()));
        let state = commands::rollback(&fleet, "schnorr", "a")
            .await
            .expect("rollback");
        assert_eq!(state.active.as_deref(), Some(v1.as_str()));
    });
}

#[test]
fn a_repeated_report_does_not_count_twice_and_reporters_add_up() {
    let redis = RedisServer::start();
    runtime().block_on(async {
        let fleet = fleet(&redis).await;
        let counts = TrialTotals {
            agreed: 10,
            errors: 1,
            ..TrialTotals::default()
        };
        fleet
            .report_trial("r", "a@1", &counts)
            .await
            .expect("report");
        let totals = fleet
            .report_trial("r", "a@1", &counts)
            .await
            .expect("again");
        assert_eq!(totals.agreed, 10);
        let more = TrialTotals {
            agreed: 5,
            ..TrialTotals::default()
        };
        let totals = fleet.report_trial("r", "b@1", &more).await.expect("b");
        assert_eq!((totals.agreed, totals.errors), (15, 1));
        assert_eq!(fleet.trial_totals("r").await.expect("read"), totals);
    });
}

#[test]
fn module_bytes_must_hash_to_their_version() {
    let redis = RedisServer::start();
    runtime().block_on(async {
        let fleet = fleet(&redis).await;
        let wasm = hotwasm_modules::find("schnorr", "fast")
            .expect("built")
            .bytes;
        let (spec, new) = fleet.publish("schnorr", wasm, "a").await.expect("publish");
        assert!(new);
        let sha = spec.split_once('@').expect("spec").1.to_string();
        assert_eq!(
            fleet.module_bytes(&sha).await.expect("read").as_deref(),
            Some(wasm)
        );
        let (_, again) = fleet.publish("schnorr", wasm, "a").await.expect("publish");
        assert!(!again, "stored once");
        assert!(matches!(
            fleet.publish("schnorr", b"not wasm", "a").await,
            Err(FleetError::BadModule(_))
        ));
        // Another module put under this version's key by a Redis writer.
        let other = hotwasm_modules::find("schnorr", "fast-opt-s")
            .expect("built")
            .bytes;
        let mut connection = redis::Client::open(redis.url())
            .expect("url")
            .get_connection()
            .expect("connects");
        let () = redis::cmd("SET")
            .arg(format!("test:fleet:module:{sha}"))
            .arg(other)
            .query(&mut connection)
            .expect("set");
        assert!(matches!(
            fleet.module_bytes(&sha).await,
            Err(FleetError::BadModule(_))
        ));
    });
}

#[test]
fn a_damaged_state_leaves_the_other_schemes_readable() {
    let redis = RedisServer::start();
    runtime().block_on(async {
        let fleet = fleet(&redis).await;
        commands::activate(&fleet, &built("fast"), "a")
            .await
            .expect("v1");
        let mut connection = redis::Client::open(redis.url())
            .expect("url")
            .get_connection()
            .expect("connects");
        let () = redis::cmd("HSET")
            .arg("test:fleet:state")
            .arg("ecdsa")
            .arg("{not json")
            .arg("ecdsa:rev")
            .arg("1")
            .query(&mut connection)
            .expect("hset");
        let states = fleet.states().await.expect("states");
        assert!(states.contains_key("schnorr"));
        assert!(!states.contains_key("ecdsa"));
        // A revision that is not a number is refused, not retried for ever.
        let () = redis::cmd("HSET")
            .arg("test:fleet:state")
            .arg("schnorr:rev")
            .arg("x")
            .query(&mut connection)
            .expect("hset");
        assert!(matches!(
            commands::activate(&fleet, &built("fast-opt-s"), "a").await,
            Err(FleetError::Corrupt(_))
        ));
    });
}
