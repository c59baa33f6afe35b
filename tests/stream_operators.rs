//! The stream operators on the in-memory source with an injected clock: no server involved.
//! Each run is a bounded query (`Trigger::AvailableNow`, no final flush) on the same checkpoint
//! and the same `MemorySource`, so every later run is a restart from the checkpoint in the middle
//! of the stream: operator state must come back from it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bde_kit::stream::sink::foreach::foreach_batch;
use bde_kit::stream::sink::{memory, MemorySink};
use bde_kit::stream::{
    Branch, ManualClock, MemorySource, Query, Row, Status, Stream, Summary, Trigger, Window,
    WindowRow,
};
use bde_kit::Settings;
use serde::{Deserialize, Serialize};

const S: i64 = 1000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Click {
    user: String,
    page: String,
    /// Event time, engine milliseconds.
    ms: i64,
    n: i64,
}

impl Row for Click {
    fn decode(value: &[u8]) -> Result<Click, String> {
        bde_kit::stream::decode_json(value)
    }
}

fn click(user: &str, page: &str, ms: i64, n: i64) -> Click {
    Click {
        user: user.into(),
        page: page.into(),
        ms,
        n,
    }
}

/// A query name and checkpoint root of one test.
struct Bench {
    name: String,
    root: std::path::PathBuf,
    source: MemorySource,
    clock: ManualClock,
}

impl Bench {
    fn new(name: &str, start_ms: i64) -> Bench {
        let name = format!("ops-{name}-{}", std::process::id());
        let root = std::env::temp_dir().join(format!("bde_ops_cp_{name}"));
        let _ = std::fs::remove_dir_all(&root);
        Bench {
            source: MemorySource::new(&name),
            name,
            root,
            clock: ManualClock::new(start_ms),
        }
    }

    fn push(&self, rows: &[Click]) {
        for r in rows {
            self.source.push_json(r).expect("push");
        }
    }

    fn stream(&self) -> Stream<Click> {
        Stream::read(self.source.clone())
    }

    /// One bounded run (a restart from the checkpoint) at the clock's time.
    fn run(&self, branches: Vec<Branch<Click>>) -> Summary {
        self.run_flushing(branches, false)
    }

    /// One bounded run, ended by a final flush when `flush` (as a stopped query is).
    fn run_flushing(&self, branches: Vec<Branch<Click>>, flush: bool) -> Summary {
        let q = Query::new(&self.name)
            .settings(Settings::from_env())
            .checkpoint_dir(&self.root)
            .clock(self.clock.clone())
            .trigger(Trigger::AvailableNow)
            .final_flush(flush)
            .quiet(true)
            .start(branches)
            .expect("start");
        assert!(q.await_termination(Duration::from_secs(30)).expect("wait"));
        let s = q.summary();
        assert_eq!(s.status, Status::Stopped, "{:?}", s.status);
        s
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

type Seen<T> = Arc<Mutex<Vec<T>>>;

fn collect<T: Clone + Send + 'static>(name: &str, seen: &Seen<T>) -> impl bde_kit::stream::Sink<T> {
    let seen = seen.clone();
    foreach_batch(name, move |_, rows: &[T]| {
        seen.lock().expect("lock").extend_from_slice(rows);
        Ok(())
    })
}

fn taken<T>(seen: &Seen<T>) -> Vec<T> {
    std::mem::take(&mut *seen.lock().expect("lock"))
}

#[test]
fn filter_map_and_several_branches_read_once() {
    let b = Bench::new("branches", 100 * S);
    b.push(&[
        click("ann", "home", 0, 1),
        click("bob", "cart", 0, 2),
        click("cid", "cart", 0, 3),
    ]);
    let carts: Seen<Click> = Arc::default();
    let users: Seen<String> = Arc::default();
    let clicks = b.stream();
    let s = b.run(vec![
        clicks
            .filter(|c| c.page == "cart")
            .write(collect("carts", &carts)),
        clicks
            .map(|c| c.user.to_uppercase())
            .write(collect("users", &users)),
        clicks.write(MemorySink::new("ops-branches-all").limit(2)),
    ]);
    assert_eq!(
        s.total_rows, 3,
        "the rows were read once for three branches"
    );
    assert_eq!(
        taken(&carts)
            .iter()
            .map(|c| c.user.as_str())
            .collect::<Vec<_>>(),
        ["bob", "cid"]
    );
    assert_eq!(taken(&users), ["ANN", "BOB", "CID"]);
    // the memory sink keeps the last two rows, as a frame with the row's fields
    let df = memory::output("ops-branches-all").expect("memory table");
    assert_eq!(df.height(), 2);
    let user = df.column("user").expect("user");
    assert_eq!(user.str().expect("text").get(0), Some("bob"));
    assert_eq!(
        df.column("n").expect("n").i64().expect("int").get(1),
        Some(3)
    );
    // a restart reads only what came after the checkpoint
    b.push(&[click("dan", "cart", 0, 4)]);
    b.run(vec![
        clicks
            .filter(|c| c.page == "cart")
            .write(collect("carts", &carts)),
        clicks
            .map(|c| c.user.to_uppercase())
            .write(collect("users", &users)),
    ]);
    assert_eq!(taken(&users), ["DAN"]);
    assert_eq!(taken(&carts).len(), 1);
}

#[test]
fn branches_of_two_reads_are_refused() {
    let b = Bench::new("two-reads", 0);
    let other = Stream::<Click>::read(MemorySource::new("other"));
    let seen: Seen<Click> = Arc::default();
    let r = Query::new(&b.name).checkpoint_dir(&b.root).start([
        b.stream().write(collect("a", &seen)),
        other.write(collect("b", &seen)),
    ]);
    let Err(e) = r else {
        panic!("two reads were accepted")
    };
    assert!(e.to_string().contains("one `Stream::read`"), "{e}");
}

#[test]
fn tumbling_window_on_processing_time_survives_a_restart() {
    let b = Bench::new("tumbling", 100 * S);
    let out: Seen<WindowRow> = Arc::default();
    let windows = |b: &Bench| {
        vec![b
            .stream()
            .with_watermark(Duration::from_secs(5))
            .window(Window::tumbling(Duration::from_secs(5)), |c| c.page.clone())
            .sum(|c| c.n)
            .write(collect("windows", &out))]
    };
    b.push(&[click("a", "home", 0, 1), click("b", "home", 0, 2)]);
    b.run(windows(&b)); // batch at 100 s: window [100, 105) open
    assert!(taken(&out).is_empty());
    b.clock.set(103 * S);
    b.push(&[click("c", "home", 0, 4), click("d", "cart", 0, 8)]);
    b.run(windows(&b)); // restart: the open window comes back from the checkpoint
    assert!(taken(&out).is_empty(), "watermark 98 s < 105 s");
    b.clock.set(110 * S);
    b.run(windows(&b)); // an empty batch moves the watermark to 105 s: the window closes
    let rows = taken(&out);
    assert_eq!(
        rows.iter()
            .map(|w| (w.start_ms / S, w.key.as_str(), w.total))
            .collect::<Vec<_>>(),
        [(100, "cart", 8), (100, "home", 7)]
    );
    b.run(windows(&b));
    assert!(taken(&out).is_empty(), "a window is emitted once");
}

#[test]
fn event_time_watermark_drops_late_rows_and_counts_them() {
    let b = Bench::new("late", 1_000 * S);
    let out: Seen<WindowRow> = Arc::default();
    let windows = |b: &Bench| {
        vec![b
            .stream()
            .with_event_time(|c| c.ms, Duration::from_secs(5))
            .window(Window::tumbling(Duration::from_secs(10)), |c| {
                c.page.clone()
            })
            .sum(|c| c.n)
            .write(collect("windows", &out))]
    };
    b.push(&[click("a", "p", 100 * S, 1), click("b", "p", 121 * S, 2)]);
    b.run(windows(&b)); // watermark 116 s closes [100, 110)
    assert_eq!(
        taken(&out)
            .iter()
            .map(|w| (w.start_ms / S, w.total))
            .collect::<Vec<_>>(),
        [(100, 1)]
    );
    b.push(&[click("c", "p", 115 * S, 4), click("d", "p", 116 * S, 8)]);
    let s = b.run(windows(&b)); // restart: the watermark (116 s) comes from the checkpoint
    let last = s.batches.last().expect("a batch");
    assert_eq!(last.late_rows, 1, "115 s is below the watermark");
    assert_eq!(last.watermark_ms, Some(116 * S));
    b.push(&[click("e", "p", 140 * S, 16)]);
    b.run(windows(&b)); // watermark 135 s closes [110, 120) and [120, 130)
    assert_eq!(
        taken(&out)
            .iter()
            .map(|w| (w.start_ms / S, w.total))
            .collect::<Vec<_>>(),
        [(110, 8), (120, 2)]
    );
}

/// Issue 19 item 11: one event 12 h in the future under a 5 s watermark delay. The default
/// bound is the delay plus one second: the row is a dead letter with the reason, the watermark
/// stays where the rows on time put it, and no row on time is dropped as late.
#[test]
fn an_event_far_ahead_of_the_watermark_delay_is_a_dead_letter_not_a_jump_of_the_watermark() {
    use bde_kit::stream::BatchInfo;
    let b = Bench::new("future", 1_000 * S);
    let out: Seen<WindowRow> = Arc::default();
    let windows = |b: &Bench| {
        vec![b
            .stream()
            .with_event_time(|c| c.ms, Duration::from_secs(5))
            .window(Window::tumbling(Duration::from_secs(10)), |c| {
                c.page.clone()
            })
            .sum(|c| c.n)
            .write(collect("windows", &out))]
    };
    let ahead = 1_000 * S + 12 * 3600 * S;
    let batch = BatchInfo {
        query: "q".into(),
        batch_id: 0,
        batch_time_ms: 1_000 * S,
        replay: false,
        flush: false,
        settings: Settings::from_env(),
    };
    let mut branch = windows(&b).remove(0);
    branch.open("q", &Settings::from_env()).expect("open");
    let rows = [
        click("a", "p", 995 * S, 1),
        click("x", "p", ahead, 100),
        click("b", "p", 1_006 * S - 1, 2), // 5.999 s ahead: the delay plus one second
    ];
    let refused = branch.check(&batch, &rows);
    assert_eq!(
        refused.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        [1],
        "{refused:?}"
    );
    assert!(
        refused[0].1.contains("event time") && refused[0].1.contains("watermark delay 5s"),
        "{}",
        refused[0].1
    );

    b.push(&rows);
    let s = b.run(windows(&b));
    let last = s.batches.last().expect("a batch");
    assert_eq!(last.dead_letters, 1, "the row 12 h ahead");
    assert_eq!(
        last.watermark_ms,
        Some(1_001 * S - 1),
        "from the rows on time"
    );
    b.clock.set(1_030 * S);
    b.push(&[click("c", "p", 1_002 * S, 4), click("d", "p", 1_020 * S, 8)]);
    let s = b.run(windows(&b)); // watermark 1015 s closes [1000, 1010)
    assert_eq!(s.total_late, 0, "no row on time is dropped as late");
    assert_eq!(
        taken(&out)
            .iter()
            .map(|w| (w.start_ms / S, w.total))
            .collect::<Vec<_>>(),
        [(990, 1), (1_000, 6)],
        "the windows hold every row on time, and not the one 12 h ahead"
    );
}

#[test]
fn sliding_windows_with_several_aggregates_survive_a_restart() {
    use bde_kit::stream::dataflow::agg;
    use bde_kit::stream::AggValue;
    let b = Bench::new("sliding", 1_000 * S);
    let out: Seen<WindowRow> = Arc::default();
    let windows = |b: &Bench| {
        vec![b
            .stream()
            .with_event_time(|c| c.ms, Duration::ZERO)
            .window(
                Window::sliding(Duration::from_secs(10), Duration::from_secs(5)),
                |c| c.page.clone(),
            )
            .agg([
                agg::sum(|c: &Click| c.n).alias("total"),
                agg::count(),
                agg::avg(|c: &Click| c.n),
                agg::max(|c: &Click| c.n),
            ])
            .write(collect("windows", &out))]
    };
    b.push(&[click("a", "p", 7 * S, 1), click("b", "p", 12 * S, 2)]);
    b.run(windows(&b)); // watermark 12 s closes [0, 10)
    let first = taken(&out);
    assert_eq!(first.len(), 1);
    assert_eq!((first[0].start_ms, first[0].total), (0, 1));
    b.push(&[click("c", "p", 14 * S, 4), click("d", "p", 31 * S, 8)]);
    b.run(windows(&b)); // restart; watermark 31 s closes [5,15) [10,20) [15,25) [20,30)
    let rows = taken(&out);
    let by_start: Vec<(i64, i64, Option<AggValue>, Option<AggValue>)> = rows
        .iter()
        .map(|w| (w.start_ms / S, w.total, w.value("count"), w.value("avg")))
        .collect();
    assert_eq!(
        by_start,
        [
            (
                5,
                7,
                Some(AggValue::Int(3)),
                Some(AggValue::Float(7.0 / 3.0))
            ),
            (10, 6, Some(AggValue::Int(2)), Some(AggValue::Float(3.0))),
        ],
        "windows [15,25) and [20,30) hold no row and are not emitted"
    );
    assert_eq!(rows[0].value("max"), Some(AggValue::Int(4)));
    assert_eq!(rows[0].value("total"), Some(AggValue::Int(7)));
}

#[test]
fn session_windows_merge_across_a_restart() {
    let b = Bench::new("session", 1_000 * S);
    let out: Seen<WindowRow> = Arc::default();
    let windows = |b: &Bench| {
        vec![b
            .stream()
            .with_event_time(|c| c.ms, Duration::from_secs(1))
            .window(Window::session(Duration::from_secs(10)), |c| c.user.clone())
            .sum(|c| c.n)
            .write(collect("sessions", &out))]
    };
    b.push(&[click("ann", "p", 100 * S, 1), click("bob", "p", 100 * S, 2)]);
    b.run(windows(&b));
    b.push(&[click("ann", "p", 108 * S, 4)]); // ann's session grows to [100, 118)
    b.run(windows(&b)); // restart: sessions come back from the checkpoint
    assert!(taken(&out).is_empty(), "watermark 107 s: no session over");
    b.push(&[click("cid", "p", 120 * S, 8)]); // watermark 119 s ends bob's and ann's
    b.run(windows(&b));
    let rows = taken(&out);
    assert_eq!(
        rows.iter()
            .map(|w| (w.key.as_str(), w.start_ms / S, w.end_ms / S, w.total))
            .collect::<Vec<_>>(),
        [("ann", 100, 118, 5), ("bob", 100, 110, 2)]
    );
}

#[test]
fn update_and_complete_modes_through_restarts() {
    use bde_kit::stream::Mode;
    let b = Bench::new("modes", 100 * S);
    let upd: Seen<WindowRow> = Arc::default();
    let all: Seen<WindowRow> = Arc::default();
    let branches = |b: &Bench| {
        let timed = b.stream().with_watermark(Duration::from_secs(5));
        let tumbling = Window::tumbling(Duration::from_secs(5));
        vec![
            timed
                .window(tumbling, |c| c.page.clone())
                .mode(Mode::Update)
                .sum(|c| c.n)
                .write(collect("update", &upd)),
            timed
                .window(tumbling, |c| c.page.clone())
                .mode(Mode::Complete)
                .sum(|c| c.n)
                .write(collect("complete", &all)),
        ]
    };
    let rows = |s: &Seen<WindowRow>| {
        taken(s)
            .iter()
            .map(|w| (w.start_ms / S, w.key.clone(), w.total, w.delta))
            .collect::<Vec<_>>()
    };
    b.push(&[click("a", "home", 0, 1)]);
    b.run(branches(&b));
    assert_eq!(rows(&upd), [(100, "home".to_string(), 1, 1)]);
    assert_eq!(rows(&all), [(100, "home".to_string(), 1, 1)]);
    b.clock.set(101 * S);
    b.push(&[click("b", "home", 0, 2)]);
    b.run(branches(&b)); // restart: the emitted totals come back, deltas stay exact
    assert_eq!(rows(&upd), [(100, "home".to_string(), 3, 2)]);
    assert_eq!(rows(&all), [(100, "home".to_string(), 3, 2)]);
    b.clock.set(120 * S);
    b.push(&[click("c", "cart", 0, 4)]);
    b.run(branches(&b)); // [100,105) closed: update forgets it, complete keeps it
    assert_eq!(rows(&upd), [(120, "cart".to_string(), 4, 4)]);
    assert_eq!(
        rows(&all),
        [
            (100, "home".to_string(), 3, 0),
            (120, "cart".to_string(), 4, 4)
        ]
    );
}

/// Issue 19 item 11: a final flush on stop, then a restart within the same window. Append mode
/// writes each window once (a sink that inserts rows would keep two partial rows otherwise):
/// the flush closes the window, and the restart's rows count in the next one. Update mode keeps
/// the flushed window and emits its change.
#[test]
fn a_final_flush_and_a_restart_within_the_window_emit_each_window_once() {
    use bde_kit::stream::Mode;
    let b = Bench::new("flush-restart", 100 * S);
    let app: Seen<WindowRow> = Arc::default();
    let upd: Seen<WindowRow> = Arc::default();
    let branches = |b: &Bench| {
        let timed = b.stream().with_watermark(Duration::from_secs(5));
        let tumbling = Window::tumbling(Duration::from_secs(5));
        vec![
            timed
                .window(tumbling, |c| c.page.clone())
                .sum(|c| c.n)
                .write(collect("append", &app)),
            timed
                .window(tumbling, |c| c.page.clone())
                .mode(Mode::Update)
                .sum(|c| c.n)
                .write(collect("update", &upd)),
        ]
    };
    let rows = |s: &Seen<WindowRow>| {
        taken(s)
            .iter()
            .map(|w| (w.start_ms / S, w.key.clone(), w.total, w.delta))
            .collect::<Vec<_>>()
    };
    b.push(&[click("a", "home", 0, 1), click("b", "home", 0, 2)]);
    b.run_flushing(branches(&b), true); // batch at 100 s, then the stop's flush
    assert_eq!(rows(&app), [(100, "home".to_string(), 3, 3)]);
    assert_eq!(rows(&upd), [(100, "home".to_string(), 3, 3)]);
    b.clock.set(102 * S); // restart within [100, 105)
    b.push(&[click("c", "home", 0, 4)]);
    let s = b.run(branches(&b));
    assert_eq!(s.total_late, 0, "no row is lost to the flush");
    assert!(
        rows(&app).is_empty(),
        "the row counts in [105, 110), still open"
    );
    assert_eq!(
        rows(&upd),
        [(100, "home".to_string(), 7, 4)],
        "update mode goes on in the flushed window and emits its change"
    );
    b.clock.set(120 * S);
    b.run(branches(&b)); // an empty batch closes [105, 110)
    assert_eq!(
        rows(&app),
        [(105, "home".to_string(), 4, 4)],
        "[100, 105) was written once, by the flush"
    );
}

#[test]
fn a_sliding_window_refuses_a_row_that_overflows_any_of_its_windows() {
    use bde_kit::stream::sink::BatchInfo;
    let b = Bench::new("slide-check", 1_000 * S);
    let mut w = b
        .stream()
        .with_event_time(|c| c.ms, Duration::ZERO)
        .window(
            Window::sliding(Duration::from_secs(10), Duration::from_secs(5)),
            |c| c.page.clone(),
        )
        .sum(|c| c.n)
        .write(collect("none", &Seen::<WindowRow>::default()));
    w.open("q", &Settings::from_env()).expect("open");
    let batch = BatchInfo {
        query: "q".into(),
        batch_id: 0,
        batch_time_ms: 100 * S,
        replay: false,
        flush: false,
        settings: Settings::from_env(),
    };
    let rows = [
        click("a", "p", 7 * S, i64::MAX), // [0,10) and [5,15)
        click("b", "p", 12 * S, 1),       // [5,15) would overflow, [10,20) not
        click("c", "p", 2 * S, 1),        // [0,10) would overflow
        click("d", "p", 17 * S, 1),       // [10,20) and [15,25): fine
    ];
    let refused: Vec<usize> = w.check(&batch, &rows).into_iter().map(|(i, _)| i).collect();
    assert_eq!(refused, [1, 2]);
}

#[test]
fn duplicates_within_the_watermark_are_dropped_across_a_restart() {
    let b = Bench::new("dedup", 0);
    let out: Seen<Click> = Arc::default();
    let firsts = |b: &Bench| {
        vec![b
            .stream()
            .with_event_time(|c| c.ms, Duration::from_secs(10))
            .drop_duplicates_within_watermark(|c| c.user.clone())
            .write(collect("firsts", &out))]
    };
    let users = |s: &Seen<Click>| {
        taken(s)
            .iter()
            .map(|c| (c.user.clone(), c.n))
            .collect::<Vec<_>>()
    };
    b.push(&[
        click("ann", "p", 100 * S, 1),
        click("bob", "p", 101 * S, 2),
        click("ann", "p", 102 * S, 3), // duplicate in the same batch
    ]);
    b.run(firsts(&b)); // watermark 92 s
    assert_eq!(
        users(&out),
        [("ann".to_string(), 1), ("bob".to_string(), 2)]
    );
    b.push(&[click("ann", "p", 108 * S, 4), click("cid", "p", 115 * S, 5)]);
    let s = b.run(firsts(&b)); // restart: ann is remembered from the checkpoint; watermark 105 s
    assert_eq!(users(&out), [("cid".to_string(), 5)]);
    assert_eq!(s.batches.last().and_then(|p| p.watermark_ms), Some(105 * S));
    // watermark 121 s forgets ann (remembered until 110 s) and bob (111 s), not cid (125 s)
    b.push(&[click("dan", "p", 131 * S, 6)]);
    b.run(firsts(&b));
    b.push(&[
        click("ann", "p", 125 * S, 7),
        click("cid", "p", 126 * S, 8),
        click("bob", "p", 100 * S, 9), // late: below the watermark
    ]);
    let s = b.run(firsts(&b));
    assert_eq!(
        users(&out),
        [("dan".to_string(), 6), ("ann".to_string(), 7)],
        "ann passes again once forgotten; cid is still remembered"
    );
    assert_eq!(s.batches.last().map(|p| p.late_rows), Some(1));
}

#[test]
fn when_a_first_row_is_refused_the_next_row_of_its_key_is_checked_in_its_place() {
    use bde_kit::stream::sink::{BatchInfo, KafkaSink};
    let b = Bench::new("dedup-check", 0);
    // the sink refuses records over 1000 bytes (checked without a broker)
    let w = b
        .stream()
        .with_event_time(|c| c.ms, Duration::from_secs(10))
        .drop_duplicates_within_watermark(|c| c.user.clone())
        .write(
            KafkaSink::new("bde_test.unused", |c: &Click| c.page.clone()).max_record_bytes(1000),
        );
    let batch = BatchInfo {
        query: "q".into(),
        batch_id: 0,
        batch_time_ms: 100 * S,
        replay: false,
        flush: false,
        settings: Settings::from_env(),
    };
    let big = "x".repeat(1500);
    let rows = [
        click("ann", &big, 100 * S, 1),
        click("ann", &big, 101 * S, 2),
        click("ann", "p", 102 * S, 3),
        click("bob", &big, 102 * S, 4),
        click("bob", "p", 103 * S, 5),
    ];
    let refused: Vec<usize> = w.check(&batch, &rows).into_iter().map(|(i, _)| i).collect();
    // without the dead letters, ann's second row would be the first the sink sees: refused too;
    // the third passes, and bob's second row is a duplicate of a refused one: it passes
    assert_eq!(refused, [0, 1, 3]);
}

/// A row type whose decode panics on the value `boom`.
#[derive(Debug, Clone, PartialEq)]
struct Fragile(String);

impl Row for Fragile {
    fn decode(value: &[u8]) -> Result<Fragile, String> {
        let s = String::from_utf8(value.to_vec()).map_err(|e| e.to_string())?;
        assert!(s != "boom", "cannot decode boom");
        Ok(Fragile(s))
    }
}

#[test]
fn a_panic_in_a_row_is_isolated_to_that_row() {
    let b = Bench::new("panics", 100 * S);
    let source = MemorySource::new(&format!("{}-fragile", b.name));
    for v in ["ab", "boom", "abcd", "x", "abc"] {
        source.push(v);
    }
    let seen: Seen<Fragile> = Arc::default();
    let shorts: Seen<String> = Arc::default();
    let words = Stream::<Fragile>::read(source.clone());
    let q = Query::new(&b.name)
        .settings(Settings::from_env())
        .checkpoint_dir(&b.root)
        .trigger(Trigger::AvailableNow)
        .quiet(true)
        .start([
            words.write(collect("all", &seen)),
            // `[..2]` panics on the one-letter word: that row only is a dead letter
            words
                .map(|w| w.0[..2].to_string())
                .write(collect("prefixes", &shorts)),
        ])
        .expect("start");
    assert!(q.await_termination(Duration::from_secs(30)).expect("wait"));
    let s = q.summary();
    assert_eq!(s.status, Status::Stopped, "{:?}", s.status);
    assert_eq!(s.total_dead_letters, 2, "boom (decode) and x (map)");
    assert_eq!(
        taken(&seen)
            .iter()
            .map(|w| w.0.as_str())
            .collect::<Vec<_>>(),
        ["ab", "abcd", "abc"],
        "a dead letter reaches no branch"
    );
    assert_eq!(taken(&shorts), ["ab", "ab", "ab"]);
}
