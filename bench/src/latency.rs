//! `bde-bench latency`: how long a visit takes from the producer to its country total in Redis,
//! with the chapter-4 analytics query running as the course runs it (a 1-second processing-time
//! trigger, its three real sinks).
//!
//! The query starts first and idles on a fresh topic. Then `visits` visits are produced at an even
//! pace over `spread`, so they land at every phase of the trigger; each carries a country of its
//! own (`L00000`, `L00001`, …) so its arrival in the sorted set can be seen. A watcher reads the
//! sorted set every few milliseconds and stamps each member when it first appears. Latency =
//! first seen − handed to the producer. Prints the median, p90, p99 and max.

// The kit's re-exports: the same crates, versions and features the kit compiles with.
use bde_kit::{chrono, rand, rdkafka, redis, serde_json};

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::producer::{FutureRecord, Producer};
use serde_json::{json, Value};

use bde_kit::config::Settings;
use bde_kit::course::visit::random_visit;
use bde_kit::error::{Error, Result};
use bde_kit::io::{kafka as kio, redis as rio};
use bde_kit::stream::trigger::Trigger;
use bde_kit::stream::Status;

use crate::stream::BenchObjects;
use bde_kit::course::analytics::Analytics;

/// How often the watcher reads the sorted set.
const WATCH_EVERY: Duration = Duration::from_millis(5);
/// How long the watcher waits for the last visit after the last send.
const WATCH_TAIL: Duration = Duration::from_secs(30);

/// The `q`-quantile (0..=1) of sorted `v`, nearest rank.
fn quantile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    v[i]
}

/// Runs the measurement: `visits` visits spread evenly over `spread`, the query on `trigger`.
pub fn run(visits: usize, spread: Duration, trigger: Duration) -> Result<Value> {
    let settings = Settings::from_env();
    let objects = BenchObjects::create(&settings, 1)?;
    let result = measure(&settings, &objects, visits, spread, trigger);
    objects.remove(&settings);
    result
}

fn measure(
    settings: &Settings,
    o: &BenchObjects,
    visits: usize,
    spread: Duration,
    trigger: Duration,
) -> Result<Value> {
    let a = Analytics {
        trigger: Trigger::every(trigger),
        ..o.analytics(format!("latency-{}", o.tag))
    };
    let q = a
        .query(settings)
        .checkpoint_dir(&o.cp_root)
        .quiet(true)
        .start(a.branches())?;
    let started = Instant::now();
    while q.status() != Status::Running {
        if let Status::Failed(e) = q.status() {
            return Err(Error::Task(format!(
                "the analytics query failed to start: {e}"
            )));
        }
        if started.elapsed() > Duration::from_secs(60) {
            return Err(Error::Task(
                "the analytics query did not start within 60 s".into(),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(trigger + Duration::from_millis(500)); // the reader is assigned and idling

    // The watcher: first time each member appears in the sorted set.
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let watch_settings = settings.clone();
    let key = o.key.clone();
    let watcher = std::thread::spawn(move || -> Result<HashMap<String, Instant>> {
        let mut con = rio::connect(&watch_settings)?;
        let mut seen: HashMap<String, Instant> = HashMap::new();
        let mut deadline: Option<Instant> = None;
        loop {
            let members: Vec<String> = redis::cmd("ZRANGE")
                .arg(&key)
                .arg(0)
                .arg(-1)
                .query(&mut con)
                .map_err(|e| rio::map_err(&watch_settings, "read the totals", e))?;
            let now = Instant::now();
            for m in members {
                seen.entry(m).or_insert(now);
            }
            if deadline.is_none() && done_rx.try_recv().is_ok() {
                deadline = Some(now + WATCH_TAIL);
            }
            if seen.len() >= visits || deadline.is_some_and(|d| now >= d) {
                return Ok(seen);
            }
            std::thread::sleep(WATCH_EVERY);
        }
    });

    let producer = kio::producer(settings)?;
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(11);
    let mut sent: HashMap<String, Instant> = HashMap::with_capacity(visits);
    let t0 = Instant::now();
    let pace = spread.div_f64(visits.max(1) as f64);
    for i in 0..visits {
        let due = t0 + pace.mul_f64(i as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let mut v = random_visit(&mut rng, chrono::Utc::now().naive_utc());
        v.country = format!("L{i:05}");
        let payload = v.to_json();
        let at = Instant::now();
        // The delivery future is dropped: librdkafka still delivers, and the flush below waits for it.
        if let Err((e, _)) =
            producer.send_result(FutureRecord::to(&o.topic).key(&v.country).payload(&payload))
        {
            let _ = done_tx.send(());
            return Err(Error::service(
                bde_kit::error::Service::Kafka,
                &settings.kafka,
                "send a visit",
                e,
            ));
        }
        sent.insert(v.country, at);
    }
    producer.flush(Duration::from_secs(30)).map_err(|e| {
        Error::service(
            bde_kit::error::Service::Kafka,
            &settings.kafka,
            "flush the visits",
            e,
        )
    })?;
    let _ = done_tx.send(());
    let seen = watcher
        .join()
        .map_err(|_| Error::Task("the Redis watcher panicked".into()))??;
    let summary = q.stop()?;
    let mut lat: Vec<f64> = sent
        .iter()
        .filter_map(|(c, at)| {
            seen.get(c)
                .map(|s| s.saturating_duration_since(*at).as_secs_f64())
        })
        .collect();
    lat.sort_by(f64::total_cmp);
    let missing = visits - lat.len();
    if missing > 0 {
        return Err(Error::Task(format!(
            "{missing} of {visits} visits never reached Redis within {} s of the last send",
            WATCH_TAIL.as_secs()
        )));
    }
    let batches = summary.batches.iter().filter(|b| b.rows_in > 0).count();
    eprintln!(
        "bde-bench latency: {visits} visits over {:.1} s, trigger {} ms: median {:.3} s, p99 {:.3} s ({batches} batches)",
        spread.as_secs_f64(),
        trigger.as_millis(),
        quantile(&lat, 0.5),
        quantile(&lat, 0.99)
    );
    Ok(json!({
        "visits": visits, "spread_seconds": spread.as_secs_f64(), "trigger_ms": trigger.as_millis() as u64, "batches": batches,
        "median": quantile(&lat, 0.5), "p90": quantile(&lat, 0.9), "p99": quantile(&lat, 0.99), "max": lat.last().copied().unwrap_or(f64::NAN),
        "min": lat.first().copied().unwrap_or(f64::NAN), "steps_ms": summary.steps_total().into_iter().map(|(n, ms)| json!([n, ms])).collect::<Vec<_>>(),
    }))
}

#[cfg(test)]
mod tests {
    use super::quantile;

    #[test]
    fn nearest_rank_quantiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 50.0);
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&v, 1.0), 100.0);
        assert_eq!(quantile(&[3.0], 0.5), 3.0);
    }
}
