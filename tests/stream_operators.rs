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
        let q = Query::new(&self.name)
            .settings(Settings::from_env())
            .checkpoint_dir(&self.root)
            .clock(self.clock.clone())
            .trigger(Trigger::AvailableNow)
            .final_flush(false)
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
