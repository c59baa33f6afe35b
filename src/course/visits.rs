//! Notebook 3 (`code_04_03_Spark_BDE_Generate a visits stream`): the website-visits generator.
//!
//! The course sends 99 visits to `spark.streaming.website.visits`, one every 1–3 s, key =
//! country, value = JSON with the fields `country, last_action, visit_date, duration`, and
//! prints each one. Here the generator runs as a background task on the kit's runtime with a
//! [`GeneratorHandle`] (progress, stop, wait with a timeout), so the notebook stays usable.
//! Lines are printed by the cell that follows or waits on the handle, never from a background
//! thread. Fast mode (`BDE_FAST=1`, [`Settings::fast`]) or [`VisitGenerator::speed`] shrinks
//! the sleeps for replays and tests, [`VisitGenerator::burst`] sends as fast as the broker takes them, and a seed makes a run
//! repeatable.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Local;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::config::Settings;
use crate::course::visit::{random_visit, Visit};
use crate::error::{Error, Result};
use crate::io::kafka;
use crate::runtime;
use crate::show::{Chart, Report, Table};

/// Where notebook 3 saves its last run's report (notebook 4 checks the pipeline against it).
pub const LAST_RUN_FILE: &str = "tmp/visits-generator-last.json";

pub use crate::course::names::VISITS_TOPIC;
/// Visits per run: the course's loop sends 99 (its comment says 100; SPEC §12 #1).
pub const COURSE_VISITS: usize = 99;
/// Speed factor in fast mode ([`Settings::fast`]): 1–3 s sleeps become 50–150 ms.
pub const FAST_SPEED: f64 = 0.05;

/// The JSON value exactly as the course's Python prints and sends it (`": "` and `", "`).
pub fn course_json(v: &Visit) -> String {
    let s = |x: &str| serde_json::to_string(x).unwrap_or_else(|_| "\"\"".into());
    format!(
        "{{\"country\": {}, \"last_action\": {}, \"visit_date\": {}, \"duration\": {}}}",
        s(&v.country),
        s(&v.last_action),
        s(&v.visit_date
            .format(crate::course::visit::VISIT_DATE_FORMAT)
            .to_string()),
        v.duration
    )
}

/// One turn of a producer loop: the record to send and the pause before the next turn.
#[derive(Debug, Clone, PartialEq)]
pub struct Produced {
    pub key: Option<String>,
    pub value: String,
    pub pause: Duration,
}

/// The body of a producer loop (see [`VisitGenerator::body`]).
pub type Body = Box<dyn FnMut(&mut StdRng) -> Produced + Send>;

/// The course's loop body: a random visit now, its JSON keyed by country, a pause of 1–3 s.
pub fn course_body(rng: &mut StdRng) -> Produced {
    let visit = random_visit(rng, Local::now().naive_local());
    let pause = Duration::from_secs(rng.random_range(1..=3u64));
    Produced {
        key: Some(visit.country.clone()),
        value: course_json(&visit),
        pause,
    }
}

/// Settings of a generator run; [`VisitGenerator::start`] starts it.
pub struct VisitGenerator {
    topic: String,
    count: usize,
    seed: Option<u64>,
    speed: f64,
    burst: bool,
    body: Body,
    settings: Settings,
}

impl std::fmt::Debug for VisitGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VisitGenerator")
            .field("topic", &self.topic)
            .field("count", &self.count)
            .field("seed", &self.seed)
            .field("speed", &self.speed)
            .field("burst", &self.burst)
            .finish()
    }
}

impl VisitGenerator {
    /// The course's run: 99 visits to the visits topic of `settings`' Kafka, 1–3 s apart
    /// ([`Settings::fast`] speeds it up).
    pub fn course(settings: &Settings) -> VisitGenerator {
        let fast = settings.fast;
        VisitGenerator {
            topic: VISITS_TOPIC.into(),
            count: COURSE_VISITS,
            seed: None,
            speed: if fast { FAST_SPEED } else { 1.0 },
            burst: false,
            body: Box::new(course_body),
            settings: settings.clone(),
        }
    }

    /// The loop's body, called once per record with the run's random generator: what to send
    /// and how long to pause after it (the pause is scaled by [`VisitGenerator::speed`];
    /// fast mode shrinks it). Values that decode as visits are added up in the run's report.
    pub fn body(mut self, body: impl FnMut(&mut StdRng) -> Produced + Send + 'static) -> Self {
        self.body = Box::new(body);
        self
    }

    /// How many visits to send.
    pub fn count(mut self, n: usize) -> Self {
        self.count = n;
        self
    }

    /// A seed for a repeatable run (countries, actions, durations and pauses).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Multiplies the 1–3 s pauses (0.1 = ten times faster).
    pub fn speed(mut self, factor: f64) -> Self {
        self.speed = factor.max(0.0);
        self
    }

    /// No pauses and no printing per visit: a load test.
    pub fn burst(mut self) -> Self {
        self.burst = true;
        self
    }

    /// Another topic (tests use their own).
    pub fn topic(mut self, topic: impl Into<String>) -> Self {
        self.topic = topic.into();
        self
    }

    /// Starts sending in the background and returns at once.
    pub fn start(self) -> Result<GeneratorHandle> {
        kafka::partitions(&self.settings, &self.topic)?; // a missing topic is a clear error now, not later
        let shared = Arc::new(Shared::default());
        let (tx, rx) = mpsc::channel();
        let (lines_tx, lines_rx) = mpsc::channel();
        let s2 = shared.clone();
        let total = self.count;
        runtime::handle().spawn(async move {
            let r = self.run(&s2, lines_tx).await;
            s2.finished.store(true, Ordering::SeqCst);
            let _ = tx.send(r);
        });
        Ok(GeneratorHandle {
            shared,
            total,
            result: Mutex::new(Some(rx)),
            lines: Mutex::new(lines_rx),
            done: Mutex::new(None),
        })
    }

    async fn run(
        mut self,
        shared: &Shared,
        lines: mpsc::Sender<String>,
    ) -> Result<GeneratorReport> {
        let producer = kafka::producer(&self.settings)?;
        let mut rng = match self.seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_os_rng(),
        };
        let started = Instant::now();
        let mut report = GeneratorReport {
            topic: self.topic.clone(),
            ..Default::default()
        };
        let mut pending = Vec::new();
        for _ in 0..self.count {
            if shared.stop.load(Ordering::SeqCst) {
                report.stopped_early = true;
                break;
            }
            let Produced { key, value, pause } = (self.body)(&mut rng);
            let visit = <Visit as crate::stream::row::Row>::decode(value.as_bytes()).ok();
            if self.burst {
                pending.push(
                    kafka::send_owned(&producer, &self.settings, &self.topic, key, value).await?,
                );
                if pending.len() >= 1000 {
                    for f in pending.drain(..) {
                        f.await?;
                    }
                }
            } else {
                kafka::send(
                    &producer,
                    &self.settings,
                    &self.topic,
                    key.as_deref(),
                    &value,
                )
                .await?;
                let _ = lines.send(value);
            }
            match &visit {
                Some(v) => report.add(v),
                None => report.sent += 1,
            }
            shared.sent.fetch_add(1, Ordering::SeqCst);
            if !self.burst {
                let d = Duration::from_secs_f64(pause.as_secs_f64() * self.speed);
                // Sleep in short steps so stop() takes effect quickly.
                let until = Instant::now() + d;
                while Instant::now() < until && !shared.stop.load(Ordering::SeqCst) {
                    tokio::time::sleep((until - Instant::now()).min(Duration::from_millis(100)))
                        .await;
                }
            }
        }
        for f in pending {
            f.await?;
        }
        report.elapsed = started.elapsed();
        Ok(report)
    }
}

#[derive(Default)]
struct Shared {
    sent: AtomicUsize,
    stop: AtomicBool,
    finished: AtomicBool,
}

/// What a run sent: totals per country and per action, the ShoppingCart visits.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GeneratorReport {
    pub topic: String,
    pub sent: usize,
    pub duration_by_country: BTreeMap<String, i64>,
    pub duration_by_action: BTreeMap<String, i64>,
    pub visits_by_action: BTreeMap<String, usize>,
    /// The ShoppingCart visits in the kit's CSV form (`country,last_action,visit_date,duration`).
    pub carts: Vec<String>,
    /// `visit_date` of the first and the last visit sent.
    pub first_visit: Option<String>,
    pub last_visit: Option<String>,
    pub elapsed: Duration,
    pub stopped_early: bool,
}

impl GeneratorReport {
    fn add(&mut self, v: &Visit) {
        self.sent += 1;
        let date = v
            .visit_date
            .format(crate::course::visit::VISIT_DATE_FORMAT)
            .to_string();
        self.first_visit.get_or_insert_with(|| date.clone());
        self.last_visit = Some(date);
        *self
            .duration_by_country
            .entry(v.country.clone())
            .or_default() += v.duration;
        *self
            .duration_by_action
            .entry(v.last_action.clone())
            .or_default() += v.duration;
        *self
            .visits_by_action
            .entry(v.last_action.clone())
            .or_default() += 1;
        if v.last_action == "ShoppingCart" {
            self.carts.push(v.csv_line());
        }
    }

    /// The totals as JSON (the chapter-4 replay test compares the pipeline's results with it).
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "topic": self.topic, "sent": self.sent,
            "duration_by_country": self.duration_by_country,
            "duration_by_action": self.duration_by_action,
            "visits_by_action": self.visits_by_action,
            "carts": self.carts, "first_visit": self.first_visit, "last_visit": self.last_visit, "elapsed_s": self.elapsed.as_secs_f64(), "stopped_early": self.stopped_early,
        })
        .to_string()
    }

    /// Writes [`GeneratorReport::to_json`] to a file (folders created).
    pub fn save(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        let p = path.as_ref();
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).map_err(|e| Error::file(d, e))?;
        }
        std::fs::write(p, self.to_json()).map_err(|e| Error::file(p, e))
    }

    /// Table of generated duration per country and a bar chart, in one block.
    pub fn report(&self) -> Report {
        let rows = self
            .duration_by_country
            .iter()
            .map(|(c, d)| vec![c.clone(), d.to_string()])
            .collect();
        Report::new()
            .heading(format!(
                "{} visits sent to {} in {:.1} s",
                self.sent,
                self.topic,
                self.elapsed.as_secs_f64()
            ))
            .table(Table::from_rows(&["country", "total duration"], rows))
            .chart(Chart::bar(
                "Generated duration by country",
                self.duration_by_country.keys().cloned().collect(),
                self.duration_by_country
                    .values()
                    .map(|v| *v as f64)
                    .collect(),
            ))
    }

    /// Rich output for evcxr.
    pub fn evcxr_display(&self) {
        self.report().evcxr_display();
    }
}

/// A running generator.
pub struct GeneratorHandle {
    shared: Arc<Shared>,
    total: usize,
    result: Mutex<Option<mpsc::Receiver<Result<GeneratorReport>>>>,
    lines: Mutex<mpsc::Receiver<String>>,
    done: Mutex<Option<GeneratorReport>>,
}

impl GeneratorHandle {
    /// (sent so far, planned).
    pub fn progress(&self) -> (usize, usize) {
        (self.shared.sent.load(Ordering::SeqCst), self.total)
    }

    /// True once the run ended (all sent, stopped, or failed).
    pub fn is_finished(&self) -> bool {
        self.shared.finished.load(Ordering::SeqCst)
    }

    /// Asks the run to stop after the visit in flight.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
    }

    /// Prints the visits sent so far that were not printed yet (as the course prints them).
    pub fn print_new(&self) -> usize {
        let mut n = 0;
        if let Ok(rx) = self.lines.lock() {
            while let Ok(line) = rx.try_recv() {
                println!("{}", crate::untrusted::line(&line));
                n += 1;
            }
        }
        n
    }

    /// Prints visits as they are sent, for at most `d`, then returns (the run goes on).
    pub fn follow(&self, d: Duration) -> (usize, usize) {
        let until = Instant::now() + d;
        while Instant::now() < until && !self.is_finished() {
            self.print_new();
            std::thread::sleep(Duration::from_millis(100));
        }
        self.print_new();
        self.progress()
    }

    /// Waits (printing visits) until the run ends, at most `timeout`; returns its report.
    pub fn wait(&self, timeout: Duration) -> Result<GeneratorReport> {
        if let Some(r) = self
            .done
            .lock()
            .map_err(|_| Error::Task("generator state poisoned".into()))?
            .clone()
        {
            return Ok(r);
        }
        let until = Instant::now() + timeout;
        loop {
            self.print_new();
            let mut slot = self
                .result
                .lock()
                .map_err(|_| Error::Task("generator state poisoned".into()))?;
            let rx = slot
                .as_ref()
                .ok_or_else(|| Error::Task("the generator's result was taken already".into()))?;
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(r) => {
                    *slot = None;
                    drop(slot);
                    self.print_new();
                    let r = r?;
                    *self
                        .done
                        .lock()
                        .map_err(|_| Error::Task("generator state poisoned".into()))? =
                        Some(r.clone());
                    return Ok(r);
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(Error::Task(
                        "the generator task ended without a result".into(),
                    ))
                }
                Err(mpsc::RecvTimeoutError::Timeout) if crate::interrupt::interrupted() => {
                    let (sent, total) = self.progress();
                    return Err(crate::interrupt::stopped(format!("the wait for the generator ({sent} of {total} visits sent so far; it keeps running: wait again, or stop it)")));
                }
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() >= until => {
                    let (sent, total) = self.progress();
                    return Err(Error::Timeout {
                        what: format!("the generator ({sent} of {total} visits sent)"),
                        after: timeout,
                        hint: "it keeps running in the background: wait again, or stop() it".into(),
                    });
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
        }
    }
}

/// The course's "Consumer test" cell, fixed: a consumer without a group at the latest offsets of
/// the visits topic polls for `wait` and prints every message it got (the course's version
/// iterated over the poll result's partitions instead of its messages), then the count.
pub fn consumer_test(settings: &Settings, wait: Duration) -> Result<usize> {
    let tail = kafka::Tail::latest(settings, VISITS_TOPIC)?;
    let msgs = tail.poll(wait)?;
    for m in &msgs {
        println!("{}", crate::untrusted::line(m));
    }
    println!("Total messages : {}", msgs.len());
    Ok(msgs.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn json_has_the_course_field_order_and_separators() {
        let d = NaiveDate::from_ymd_opt(2024, 8, 12)
            .and_then(|d| d.and_hms_opt(13, 1, 16))
            .expect("date");
        let v = Visit::new("USA", "Order", d, 11);
        assert_eq!(
            course_json(&v),
            r#"{"country": "USA", "last_action": "Order", "visit_date": "2024-08-12 13:01:16", "duration": 11}"#
        );
        assert_eq!(
            <Visit as crate::stream::row::Row>::decode(course_json(&v).as_bytes())
                .expect("decodes"),
            v
        );
    }

    #[test]
    fn report_adds_up_per_country_and_action() {
        let d = NaiveDate::from_ymd_opt(2024, 8, 12)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .expect("date");
        let mut r = GeneratorReport::default();
        r.add(&Visit::new("USA", "ShoppingCart", d, 5));
        r.add(&Visit::new("USA", "FAQ", d, 7));
        r.add(&Visit::new("India", "FAQ", d, 1));
        assert_eq!(r.duration_by_country["USA"], 12);
        assert_eq!(r.duration_by_action["FAQ"], 8);
        assert_eq!(
            r.carts,
            vec!["USA,ShoppingCart,2024-08-12 00:00:00,5".to_string()]
        );
    }
}
