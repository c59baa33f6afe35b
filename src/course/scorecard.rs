//! Notebook 7 (`code_06_04_Spark_BDE_scorecard_for_last_action`): the scorecard of long last
//! actions, a streaming query on `spark.exercise.lastaction.long` from the earliest offsets
//! adding 1 per message to the Redis sorted set `long-last-action-stats`.
//!
//! The course's query has no checkpoint, so every restart re-reads the topic and adds all counts
//! again. Here the query checkpoints under `<Settings.checkpoint_dir>/long-last-action-scorecard`
//! and its Redis sink applies each micro-batch exactly once, so restarting counts nothing twice;
//! [`start_scorecard`]`(true)` resets the key and the checkpoint to count from scratch (a first
//! run without a checkpoint does the same).
//! The cell watching it refreshes every 5 s (1 s with `BDE_FAST`), prints the counts highest
//! first as the course does, and ends with a table and a bar chart.

use std::time::Duration;

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::io::{kafka, redis};
use crate::show::live::Live;
use crate::show::{Chart, Report, Table};
use crate::stream::{checkpoint, StreamingQuery};

pub use crate::course::names::{SCORECARD_QUERY as QUERY, SCORE_KEY};

/// Gets the scorecard ready to start: with `reset`, the Redis key and the query's checkpoint are
/// deleted, so it counts the whole topic again. Without a checkpoint (first run, a fresh clone)
/// the key is reset too: the counts are a function of the topic, and recounting from the
/// earliest offsets on top of old counts is the course's double counting. A scorecard running in
/// this kernel is stopped first.
pub fn prepare(reset: bool) -> Result<()> {
    let s = Settings::from_env();
    let dir = checkpoint::dir_for(&s.checkpoint_dir, QUERY);
    let fresh = !dir.join("checkpoint.json").exists();
    if reset || fresh {
        // This kernel's instance stops; one running anywhere else keeps the checkpoint locked,
        // and the reset then fails before touching the key.
        crate::stream::stop(QUERY)?;
        checkpoint::reset_with(&s.checkpoint_dir, QUERY, || {
            redis::delete(&s, &[SCORE_KEY]).map(|_| ())
        })?;
        if reset {
            println!("{SCORE_KEY} and the scorecard's checkpoint reset");
        } else {
            println!("no scorecard checkpoint yet: {SCORE_KEY} counts the topic from zero");
        }
    }
    Ok(())
}

/// True when the query has read everything in the topic.
fn caught_up(s: &Settings) -> Result<bool> {
    let done = crate::stream::query::checkpoint_offsets(s, QUERY)?;
    let topic = crate::course::names::LONG_TOPIC;
    let ends = kafka::watermarks(s, topic)?;
    Ok(ends.iter().all(|(p, _, hi)| {
        done.get(topic)
            .and_then(|m| m.get(p))
            .is_some_and(|o| o >= hi)
    }))
}

/// The counts of the scorecard, highest first.
#[derive(Debug, Clone, Default)]
pub struct ScorecardReport {
    pub refreshes: usize,
    pub counts: Vec<(String, f64)>,
}

impl ScorecardReport {
    pub fn report(&self) -> Report {
        let rows = self
            .counts
            .iter()
            .map(|(a, n)| vec![a.clone(), format!("{n}")])
            .collect();
        Report::new()
            .heading("Long Last Action Stats from Redis")
            .table(Table::from_rows(&["last action", "count"], rows))
            .chart(Chart::bar(
                "Long last actions",
                self.counts.iter().map(|c| c.0.clone()).collect(),
                self.counts.iter().map(|c| c.1).collect(),
            ))
    }

    pub fn evcxr_display(&self) {
        self.report().evcxr_display();
    }
}

/// Prints the counts every 5 s (1 s with `BDE_FAST`) for `refreshes` refreshes; with
/// `BDE_FAST` it stops earlier, two refreshes after the query read the whole topic.
pub fn watch(job: &StreamingQuery, refreshes: usize) -> Result<ScorecardReport> {
    let s = Settings::from_env();
    let fast = crate::config::fast_mode();
    let mut report = ScorecardReport::default();
    let mut after_catch_up = 0;
    let n = Live::every(Duration::from_secs(if fast { 1 } else { 5 }))
        .refreshes(refreshes)
        .run_until(
            |_| {
                if let crate::stream::Status::Failed(e) = job.status() {
                    return Err(Error::Task(format!("the scorecard query failed: {e}")));
                }
                report.counts = redis::scores(&s, SCORE_KEY)?;
                let mut block = format!("Long Last Action Stats from Redis\n{}\n", "-".repeat(33));
                for (a, n) in &report.counts {
                    block.push_str(&format!("{a}  =  {n:.1}\n"));
                }
                Ok(block)
            },
            || {
                if fast && caught_up(&s).unwrap_or(false) {
                    after_catch_up += 1;
                }
                after_catch_up >= 2
            },
        )?;
    report.refreshes = n;
    Ok(report)
}

/// Checks that every message in the topic was counted exactly once: the messages per action
/// in `spark.exercise.lastaction.long` against the counts in Redis. The ledger of notebook 6 is
/// shown beside them (it also holds IDs published to a broker whose data was since wiped).
pub fn check_counts() -> Result<Table> {
    use std::collections::BTreeMap;
    let s = Settings::from_env();
    let mut topic: BTreeMap<String, i64> = BTreeMap::new();
    for (_, action) in kafka::read_all(
        &s,
        crate::course::names::LONG_TOPIC,
        Duration::from_secs(60),
    )? {
        *topic.entry(action).or_default() += 1;
    }
    let ledger: BTreeMap<String, i64> =
        crate::course::long_actions::ledger_counts(&s, crate::course::names::STATS_DB)?
            .into_iter()
            .collect();
    let redis: BTreeMap<String, i64> = redis::scores(&s, SCORE_KEY)?
        .into_iter()
        .map(|(a, n)| (a, n.round() as i64))
        .collect();
    let mut names: Vec<&String> = topic.keys().chain(redis.keys()).collect();
    names.sort();
    names.dedup();
    let mut all_equal = !topic.is_empty();
    let rows = names
        .into_iter()
        .map(|a| {
            let (t, r, l) = (
                topic.get(a).copied().unwrap_or(0),
                redis.get(a).copied().unwrap_or(0),
                ledger.get(a).copied().unwrap_or(0),
            );
            all_equal &= t == r;
            vec![
                a.clone(),
                t.to_string(),
                r.to_string(),
                l.to_string(),
                if t == r { "yes".into() } else { "NO".into() },
            ]
        })
        .collect();
    Ok(Table::from_rows(
        &[
            "last action",
            "messages in the topic",
            "counted (Redis)",
            "published (ledger)",
            "equal",
        ],
        rows,
    )
    .title(if all_equal {
        "scorecard check: all equal"
    } else {
        "scorecard check: MISMATCH"
    }))
}
