//! Across processes: the test binary re-executes itself as producer
//! children (the role comes from an environment variable) that open the ring
//! by path and push; the parent reads everything through a far smaller ring.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use hotwasm_shm::Ring;

use crate::{PATIENCE, pop_one, record, scratch, tag};

/// Set in a child: the ring to open.
const CHILD_RING: &str = "HOTWASM_SHM_TEST_CHILD_RING";
/// Set in a child: its producer number.
const CHILD_ID: &str = "HOTWASM_SHM_TEST_CHILD_ID";
const CHILD_TEST: &str = "cross_process::child_pushes_records";
const RECORDS_PER_CHILD: u32 = 3_000;
const MAX: usize = 48;

/// The child's role, run only by `two_child_processes_push_through_a_small_ring`
/// in a re-executed test binary (ignored in an ordinary run, where it would
/// have no ring to push into and so prove nothing).
#[test]
#[ignore = "the producer child of two_child_processes_push_through_a_small_ring, which runs it"]
fn child_pushes_records() {
    let path = std::env::var_os(CHILD_RING).unwrap_or_else(|| {
        panic!(
            "{CHILD_TEST} is the producer child of two_child_processes_push_through_a_small_ring \
             and needs {CHILD_RING}; run that test instead"
        )
    });
    let who: u8 = std::env::var(CHILD_ID)
        .expect("child id")
        .parse()
        .expect("numeric child id");
    let ring = Ring::open(Path::new(&path)).expect("child opens the ring");
    for n in 0..RECORDS_PER_CHILD {
        ring.push(&record(who, n, MAX), PATIENCE)
            .expect("child push");
    }
}

fn spawn_child(path: &Path, who: u8) -> Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args([
            CHILD_TEST,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_RING, path)
        .env(CHILD_ID, who.to_string())
        // libtest's chatter; a failing child's panic still goes to stderr.
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn child")
}

#[test]
fn two_child_processes_push_through_a_small_ring() {
    let (_dir, path) = scratch("cross-process");
    let reader = Ring::create(&path, 8, MAX as u32).expect("create");
    let mut children: Vec<Child> = (1..=2).map(|who| spawn_child(&path, who)).collect();
    let mut next: HashMap<u8, u32> = HashMap::new();
    for _ in 0..2 * RECORDS_PER_CHILD {
        let got = pop_one(&reader);
        let (who, n) = tag(&got);
        let expected = next.entry(who).or_insert(0);
        assert_eq!(n, *expected, "child {who} out of order");
        assert_eq!(got, record(who, n, MAX));
        *expected += 1;
    }
    for child in &mut children {
        assert!(child.wait().expect("wait child").success(), "child failed");
    }
    assert_eq!(
        next,
        HashMap::from([(1, RECORDS_PER_CHILD), (2, RECORDS_PER_CHILD)])
    );
    assert!(path.exists(), "children must not delete the reader's ring");
}
