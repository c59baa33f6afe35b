//! The dashboard's sampler: reads every panel once per period into [`Panels`] (the figures the
//! page shows), keeping the last good figures of a panel whose source fails, and hands the
//! rendered view to the server.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{page, Dashboard, ProgressSource, State};
use crate::config::Settings;
use crate::stream::clock::fmt_ms;
use crate::stream::{checkpoint, Progress, Status, Summary};

/// One key's points (Unix seconds, value) in a time-series panel.
pub type KeySeries = (String, Vec<(f64, f64)>);

/// Batches shown in the rows/s chart.
const RATE_BATCHES: usize = 60;

/// Everything the page shows, as of one sample.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Panels {
    pub title: String,
    /// Samples taken so far (the page's refresh counter).
    pub seq: u64,
    /// Local time of the sample, `HH:MM:SS`.
    pub updated: String,
    /// (panel title, newest lines, oldest first).
    pub lines: Option<(String, Vec<String>)>,
    /// Lines seen since the dashboard started.
    pub lines_seen: u64,
    /// (panel title, totals per label).
    pub bars: Option<(String, Vec<(String, f64)>)>,
    /// (panel title, points (Unix seconds, value) per key).
    pub series: Option<(String, Vec<KeySeries>)>,
    pub progress: Option<ProgressView>,
    /// Panels whose source failed in this sample (they keep their last figures).
    pub errors: Vec<String>,
}

impl Panels {
    /// The sum of the bar totals (0 without a bar panel).
    pub fn bars_total(&self) -> f64 {
        self.bars
            .as_ref()
            .map(|(_, b)| b.iter().map(|(_, v)| v).sum::<f64>() + 0.0)
            .unwrap_or(0.0)
    }
}

/// A query's progress as the Spark UI's streaming tab shows it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProgressView {
    pub name: String,
    /// `running`, `stopping`, `stopped`, `failed: …`, or what is known from another kernel.
    pub status: String,
    /// Stopped or failed: the figures are final.
    pub stopped: bool,
    pub batches: u64,
    pub total_rows: u64,
    pub dead_letters: u64,
    pub late_rows: u64,
    /// Rows of the last batch per second since the batch before it (Spark's input rate).
    pub input_rows_per_sec: Option<f64>,
    /// Rows of the last batch per second of its duration (Spark's processing rate).
    pub processed_rows_per_sec: Option<f64>,
    pub batch_ms: Option<u64>,
    pub read_ms: Option<u64>,
    pub decode_ms: Option<u64>,
    /// Write-ahead plus commit: the checkpoint's share of the last batch.
    pub checkpoint_ms: Option<u64>,
    pub watermark: Option<String>,
    /// Milliseconds each sink took on the last batch.
    pub sink_ms: Vec<(String, u64)>,
    /// (batch id, input rows/s, processed rows/s) of the last batches.
    pub rates: Vec<(u64, f64, f64)>,
    /// A remark shown under the figures (e.g. "runs in another kernel").
    pub note: Option<String>,
}

impl ProgressView {
    /// The view of a query summary.
    pub fn of(s: &Summary) -> ProgressView {
        let last: Option<&Progress> = s
            .batches
            .iter()
            .rev()
            .find(|p| !p.flush)
            .or(s.batches.last());
        let mut rates = Vec::new();
        let mut prev: Option<&Progress> = None;
        for p in &s.batches {
            rates.push((
                p.batch_id,
                input_rate(prev, p).unwrap_or(0.0),
                p.rows_per_sec,
            ));
            prev = Some(p);
        }
        let skip = rates.len().saturating_sub(RATE_BATCHES);
        let input = last.and_then(|l| {
            let i = s.batches.iter().position(|p| std::ptr::eq(p, l))?;
            input_rate(i.checked_sub(1).and_then(|j| s.batches.get(j)), l)
        });
        ProgressView {
            name: s.name.clone(),
            status: s.status.to_string(),
            stopped: s.status.is_terminated(),
            batches: s.batches.len() as u64,
            total_rows: s.total_rows,
            dead_letters: s.total_dead_letters,
            late_rows: s.total_late,
            input_rows_per_sec: input,
            processed_rows_per_sec: last.map(|l| l.rows_per_sec),
            batch_ms: last.map(|l| l.duration_ms),
            read_ms: last.map(|l| l.read_ms),
            decode_ms: last.map(|l| l.decode_ms),
            checkpoint_ms: last.map(|l| l.write_ahead_ms + l.commit_ms),
            watermark: s
                .batches
                .iter()
                .rev()
                .find_map(|p| p.watermark_ms)
                .map(fmt_ms),
            sink_ms: last.map(|l| l.sink_ms.clone()).unwrap_or_default(),
            rates: rates.into_iter().skip(skip).collect(),
            note: None,
        }
    }
}

/// Rows of `p` per second since the batch before it started.
fn input_rate(prev: Option<&Progress>, p: &Progress) -> Option<f64> {
    let gap = p.batch_time_ms - prev?.batch_time_ms;
    (gap > 0).then(|| p.rows_in as f64 * 1000.0 / gap as f64)
}

/// The summary of query `name`: from its handle when it runs in this kernel, else what it
/// publishes in its checkpoint folder under `settings` (another kernel or process), `Ok(None)`
/// when neither is there or the file is from a run that ended before `since_ms` (an old run).
/// A file that still says running while the heartbeat has been silent for 10 s belongs to a
/// process that ended without stopping: it shows as failed.
pub(super) fn named_summary(
    name: &str,
    settings: &Settings,
    since_ms: i64,
) -> crate::error::Result<Option<Summary>> {
    if let Some(q) = crate::stream::get(name) {
        return Ok(Some(q.summary()));
    }
    let Some(published) = crate::stream::progress::read_published(&settings.checkpoint_dir, name)?
    else {
        return Ok(None);
    };
    let mut s = published.summary;
    if s.status.is_terminated() && published.written_ms < since_ms {
        return Ok(None);
    }
    let alive = checkpoint::is_alive(
        &checkpoint::dir_for(&settings.checkpoint_dir, name),
        checkpoint::ALIVE_WITHIN,
    );
    if !s.status.is_terminated() && !alive {
        if published.written_ms < since_ms {
            return Ok(None);
        }
        s.status = Status::Failed(format!(
            "its process (pid {}) ended without stopping the query",
            published.pid
        ));
    }
    Ok(Some(s))
}

/// Samples until the dashboard is stopped.
pub(super) fn run_sampler(mut d: Dashboard, state: &State) {
    let mut panels = Panels {
        title: d.title.clone(),
        ..Panels::default()
    };
    let mut lines: VecDeque<String> = VecDeque::new();
    let mut seen_running = false;
    while !state.stop.load(Ordering::SeqCst) {
        let started = Instant::now();
        let sampled = catch_unwind(AssertUnwindSafe(|| {
            sample(&mut d, &mut panels, &mut lines, &mut seen_running)
        }));
        if sampled.is_err() {
            panels
                .errors
                .push("a panel's source panicked; its figures are from an earlier refresh".into());
        }
        panels.seq += 1;
        panels.updated = chrono::Local::now().format("%H:%M:%S").to_string();
        let view = page::View::render(&panels);
        if let Ok(mut v) = state.view.lock() {
            *v = view;
        }
        while started.elapsed() < d.every && !state.stop.load(Ordering::SeqCst) {
            std::thread::sleep(
                Duration::from_millis(25).min(d.every.saturating_sub(started.elapsed())),
            );
        }
    }
}

fn sample(
    d: &mut Dashboard,
    panels: &mut Panels,
    lines: &mut VecDeque<String>,
    seen_running: &mut bool,
) {
    panels.errors.clear();
    if let Some((title, poll)) = &mut d.lines {
        match poll() {
            Ok(new) => {
                panels.lines_seen += new.len() as u64;
                lines.extend(new);
                while lines.len() > d.keep_lines {
                    lines.pop_front();
                }
            }
            Err(e) => panels.errors.push(format!("{title}: {e}")),
        }
        panels.lines = Some((title.clone(), lines.iter().cloned().collect()));
    }
    if let Some((title, read)) = &mut d.bars {
        match read() {
            Ok(b) => panels.bars = Some((title.clone(), b)),
            Err(e) => {
                panels.errors.push(format!("{title}: {e}"));
                panels.bars.get_or_insert_with(|| (title.clone(), vec![]));
            }
        }
    }
    if let Some((title, read)) = &mut d.series {
        match read() {
            Ok(points) => panels.series = Some((title.clone(), group_series(points))),
            Err(e) => {
                panels.errors.push(format!("{title}: {e}"));
                panels.series.get_or_insert_with(|| (title.clone(), vec![]));
            }
        }
    }
    match &mut d.progress {
        None => {}
        Some(ProgressSource::Handle(q)) => panels.progress = Some(ProgressView::of(&q.summary())),
        Some(ProgressSource::Fn { name, read }) => match read() {
            Ok(Some(s)) => {
                *seen_running |= !s.status.is_terminated();
                let mut v = ProgressView::of(&s);
                if s.batches.is_empty() && !v.stopped {
                    v.note = Some("no batch yet".into());
                }
                panels.progress = Some(v);
            }
            Ok(None) => {
                let (status, note) = if *seen_running {
                    (
                        "stopped".to_string(),
                        "it stopped; the figures are final".to_string(),
                    )
                } else {
                    (
                        "not running".to_string(),
                        "start it (notebook 4); this panel follows it once it runs".to_string(),
                    )
                };
                let mut v = panels
                    .progress
                    .take()
                    .filter(|p| p.name == *name)
                    .unwrap_or_else(|| ProgressView {
                        name: name.clone(),
                        ..ProgressView::default()
                    });
                v.stopped = *seen_running;
                v.status = status;
                v.note = Some(note);
                panels.progress = Some(v);
            }
            Err(e) => panels.errors.push(format!("progress of {name}: {e}")),
        },
    }
}

/// (Unix seconds, key, value) points as one series per key, keys in order of appearance.
fn group_series(points: Vec<(i64, String, f64)>) -> Vec<(String, Vec<(f64, f64)>)> {
    let mut out: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for (t, k, v) in points {
        match out.iter_mut().find(|(name, _)| *name == k) {
            Some((_, pts)) => pts.push((t as f64, v)),
            None => out.push((k, vec![(t as f64, v)])),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(id: u64, t: i64, rows: u64, ms: u64) -> Progress {
        Progress {
            batch_id: id,
            batch_time_ms: t,
            rows_in: rows,
            rows_per_sec: rows as f64 * 1000.0 / ms as f64,
            duration_ms: ms,
            watermark_ms: Some(t - 5000),
            sink_ms: vec![("redis".into(), 3)],
            sink_rows: vec![],
            read_ms: 2,
            decode_ms: 1,
            write_ahead_ms: 1,
            dead_letter_ms: 0,
            commit_ms: 1,
            dead_letters: 0,
            late_rows: 0,
            replay: false,
            flush: false,
            data_loss: vec![],
        }
    }

    #[test]
    fn rates_follow_spark_input_over_trigger_gap_and_processed_over_duration() {
        let s = Summary {
            name: "q".into(),
            status: Status::Running,
            checkpoint: Default::default(),
            batches: vec![batch(0, 10_000, 5, 100), batch(1, 12_000, 40, 200)],
            total_rows: 45,
            total_dead_letters: 1,
            total_late: 0,
        };
        let v = ProgressView::of(&s);
        assert_eq!(
            v.input_rows_per_sec,
            Some(20.0),
            "40 rows over the 2 s since the batch before"
        );
        assert_eq!(v.processed_rows_per_sec, Some(200.0), "40 rows in 200 ms");
        assert_eq!(v.batch_ms, Some(200));
        assert_eq!(v.sink_ms, vec![("redis".to_string(), 3)]);
        assert!(!v.stopped && v.status == "running");
        assert_eq!(v.rates.len(), 2);
    }

    #[test]
    fn a_stopped_summary_is_final() {
        let s = Summary {
            name: "q".into(),
            status: Status::Stopped,
            checkpoint: Default::default(),
            batches: vec![],
            total_rows: 0,
            total_dead_letters: 0,
            total_late: 0,
        };
        let v = ProgressView::of(&s);
        assert!(v.stopped && v.input_rows_per_sec.is_none());
    }

    /// A query of "another kernel": only its published progress file and heartbeat exist here.
    #[test]
    fn a_query_of_another_kernel_is_read_from_its_published_progress() {
        use crate::stream::progress::{publish, Published};
        let root = std::env::temp_dir().join(format!("bde_dash_pub_{}", std::process::id()));
        let settings = Settings {
            checkpoint_dir: root.clone(),
            ..Settings::default()
        };
        let dir = checkpoint::dir_for(&root, "other-kernel-q");
        std::fs::create_dir_all(&dir).expect("dir");
        let now = chrono::Utc::now().timestamp_millis();
        let summary = |status| Summary {
            name: "other-kernel-q".into(),
            status,
            checkpoint: Default::default(),
            batches: vec![batch(0, 1_000, 4, 10)],
            total_rows: 4,
            total_dead_letters: 0,
            total_late: 0,
        };
        assert!(
            named_summary("other-kernel-q", &settings, now)
                .expect("reads")
                .is_none(),
            "nothing published yet"
        );

        publish(
            &dir,
            &Published {
                pid: 1,
                written_ms: now,
                summary: summary(Status::Running),
            },
        )
        .expect("publish");
        checkpoint::heartbeat(&dir);
        let s = named_summary("other-kernel-q", &settings, now - 1)
            .expect("reads")
            .expect("published");
        assert_eq!((s.status.clone(), s.total_rows), (Status::Running, 4));

        checkpoint::heartbeat_stop(&dir);
        let s = named_summary("other-kernel-q", &settings, now - 1)
            .expect("reads")
            .expect("published");
        assert!(
            matches!(s.status, Status::Failed(ref m) if m.contains("ended without stopping")),
            "{:?}",
            s.status
        );

        publish(
            &dir,
            &Published {
                pid: 1,
                written_ms: now - 60_000,
                summary: summary(Status::Stopped),
            },
        )
        .expect("publish");
        assert!(
            named_summary("other-kernel-q", &settings, now)
                .expect("reads")
                .is_none(),
            "a run that ended before the dashboard started is not shown"
        );
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn series_group_by_key_in_order() {
        let g = group_series(vec![
            (5, "FAQ".into(), 1.0),
            (5, "Order".into(), 2.0),
            (10, "FAQ".into(), 3.0),
        ]);
        assert_eq!(
            g,
            vec![
                ("FAQ".to_string(), vec![(5.0, 1.0), (10.0, 3.0)]),
                ("Order".to_string(), vec![(5.0, 2.0)])
            ]
        );
    }
}
