//! One engine per checkpoint across a real process boundary, and the checkpoint folder removed
//! under a running query (issue 19, item 5).
//!
//! The test re-invokes its own binary as process A (`A_ROOT` names the checkpoint root): A starts
//! a query and holds it until the parent says stop. The parent (process B) removes A's
//! checkpoint folder, as a user following "delete the checkpoint to start afresh" would, and
//! starts the same query: refused, naming A's pid, because the lock is the file beside the folder.
//! A goes on, writes its whole checkpoint again at its next commit, and once A stopped, B starts.
//! No server is involved (a `MemorySource` per process): what is under test is the local lock.

use std::io::{BufRead, BufReader, Lines};
use std::path::{Path, PathBuf};
use std::process::{ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use bde_kit::error::Error;
use bde_kit::stream::sink::MemorySink;
use bde_kit::stream::{checkpoint, MemorySource, Query, Status, Stream, StreamingQuery, Trigger};

/// Set (to the checkpoint root) only in process A.
const A_ROOT: &str = "BDE_TEST_CKPT_A_ROOT";
const QUERY: &str = "ckpt-lock-process-test";
/// The source's name (its "topic" in the checkpoint), the same in both processes.
const SOURCE: &str = "ckpt-lock-source";

fn start(root: &Path, source: &MemorySource) -> bde_kit::Result<StreamingQuery> {
    let rows = Stream::<String>::read(source.clone()).write(MemorySink::new(&format!(
        "ckpt-lock-{}",
        std::process::id()
    )));
    Query::new(QUERY)
        .checkpoint_dir(root)
        .trigger(Trigger::every(Duration::from_millis(50)))
        .quiet(true)
        .start([rows])
}

/// Waits (bounded) for a flag file the other process writes.
fn wait_for(flag: &Path) -> bool {
    let t = Instant::now();
    while !flag.exists() && t.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(20));
    }
    flag.exists()
}

/// Process A: a no-op unless the parent test started this binary with `A_ROOT`.
#[test]
fn process_a_holds_the_query() {
    let Some(root) = std::env::var_os(A_ROOT).map(PathBuf::from) else {
        return;
    };
    let source = MemorySource::new(SOURCE);
    let q = start(&root, &source).expect("A starts the query");
    println!("A: started pid={}", std::process::id());
    assert!(
        wait_for(&root.join("push")),
        "the parent never asked for a batch"
    );
    source.push("one row");
    let t = Instant::now();
    while q.batches_done() == 0 && t.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    println!("A: committed {} batches", q.batches_done());
    assert!(wait_for(&root.join("stop")), "the parent never said stop");
    let end = match q.stop() {
        Ok(s) => s.status.to_string(),
        Err(e) => format!("error {e}"),
    };
    println!("A: ended {end}");
}

/// A's next step: the next line of its output holding `A: `, from there (the test harness
/// prints `test process_a_holds_the_query ... ` before A's first line).
fn next_a_line(lines: &mut Lines<BufReader<ChildStdout>>) -> String {
    lines
        .map_while(Result::ok)
        .find_map(|l| l.find("A: ").map(|i| l[i..].to_string()))
        .expect("process A ended before printing its next step")
}

#[test]
fn a_second_process_is_refused_after_the_checkpoint_folder_was_removed() {
    if std::env::var_os(A_ROOT).is_some() {
        return;
    }
    let root = std::env::temp_dir().join(format!("bde_ckpt_lock_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("root");
    let dir = checkpoint::dir_for(&root, QUERY);
    let mut a = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "process_a_holds_the_query",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(A_ROOT, &root)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start process A");
    let mut lines = BufReader::new(a.stdout.take().expect("A's stdout")).lines();
    let started = next_a_line(&mut lines);
    assert_eq!(started, format!("A: started pid={}", a.id()));
    assert!(dir.is_dir(), "A made its checkpoint folder");

    // The user deletes the checkpoint under the running query.
    std::fs::remove_dir_all(&dir).expect("remove A's checkpoint folder");

    let b = MemorySource::new(SOURCE);
    let err = start(&root, &b).expect_err("process B must be refused while A runs");
    match &err {
        Error::CheckpointLocked { pid, .. } => assert_eq!(*pid, a.id().to_string(), "{err}"),
        other => panic!("expected CheckpointLocked, got {other}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("running elsewhere"), "{msg}");
    assert!(msg.contains(&format!("end process {}", a.id())), "{msg}");
    let reset = checkpoint::reset(&root, QUERY).expect_err("a reset is refused too");
    assert!(matches!(reset, Error::CheckpointLocked { .. }), "{reset}");

    // A goes on: its next commit writes its whole checkpoint again; B is still refused.
    std::fs::write(root.join("push"), "").expect("push flag");
    assert_eq!(next_a_line(&mut lines), "A: committed 1 batches");
    let cp = checkpoint::Checkpoint::load(&dir, QUERY).expect("A's checkpoint");
    assert_eq!(cp.next_batch, 1, "written again by A, with its batch");
    assert!(!cp.epoch.is_empty(), "with A's lineage");
    assert!(
        matches!(start(&root, &b), Err(Error::CheckpointLocked { .. })),
        "B is refused while A runs"
    );

    std::fs::write(root.join("stop"), "").expect("stop flag");
    assert_eq!(next_a_line(&mut lines), "A: ended stopped");
    assert!(a.wait().expect("A exits").success(), "process A failed");

    // A ended: B starts on A's checkpoint (offset 1: B's source holds the same one row), and its
    // status names the folder.
    b.push("one row");
    let q = start(&root, &b).expect("B starts once A ended");
    assert_eq!(q.checkpoint_dir(), dir.as_path());
    let summary = q.stop().expect("B stops");
    assert_eq!(summary.status, Status::Stopped);
    assert_eq!(summary.checkpoint, dir);
    assert!(
        summary
            .to_string()
            .contains(&format!("checkpoint: {}", dir.display())),
        "{summary}"
    );
    let _ = std::fs::remove_dir_all(&root);
}
