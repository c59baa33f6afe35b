//! `scorecard::prepare(&s, true)` (notebook 7's reset) never resets under a scorecard running elsewhere (another kernel):
//! the checkpoint's lock makes it fail before the Redis key or the checkpoint is touched.

use bde_kit::course::scorecard::{self, QUERY};
use bde_kit::stream::checkpoint;
use bde_kit::stream::lock::CheckpointLock;
use bde_kit::{Error, Settings};

#[test]
fn a_reset_under_a_scorecard_running_elsewhere_fails_and_touches_nothing() {
    let root = std::env::temp_dir().join(format!("bde_scorecard_lock_{}", std::process::id()));
    std::env::set_var("BDE_CHECKPOINT_DIR", &root);
    let s = Settings::from_env();
    let dir = checkpoint::dir_for(&s.checkpoint_dir, QUERY);
    // "another kernel" runs the scorecard: it holds the checkpoint's lock
    let other = CheckpointLock::acquire(&dir, QUERY).expect("the other kernel's lock");
    std::fs::write(
        dir.join("checkpoint.json"),
        format!("{{\"query\":\"{QUERY}\",\"next_batch\":3,\"offsets\":{{}}}}"),
    )
    .expect("a checkpoint");
    let before = bde_kit::io::redis::scores(&s, scorecard::SCORE_KEY).expect("scores before");

    let err = scorecard::prepare(&s, true).expect_err("the reset must refuse");
    assert!(matches!(err, Error::CheckpointLocked { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("pid={}", std::process::id())),
        "{err}"
    );
    assert_eq!(
        bde_kit::io::redis::scores(&s, scorecard::SCORE_KEY).expect("scores after"),
        before,
        "the key is untouched"
    );
    assert!(
        dir.join("checkpoint.json").exists(),
        "the checkpoint is untouched"
    );
    drop(other);
    let _ = std::fs::remove_dir_all(&root);
}
