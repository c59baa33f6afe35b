//! The streaming benchmark's data and bde_kit's side: the course's visits as JSON-lines files
//! (the same files PySpark's file source reads), produced to a fresh Kafka topic, read at the
//! broker's raw rdkafka rate (the ceiling, [`crate::stream::raw_consume_rate`]) and by the
//! course's analytics query with its three real sinks ([`bde_kit::course::analytics::Analytics`]:
//! carts to Kafka, ZINCRBY per country to Redis, 5-second processing-time windows to MariaDB).
//! Topics, key and database are fresh per run and removed afterwards.

// The kit's re-exports: the same crates, versions and features the kit compiles with.
use bde_kit::{chrono, mysql, rand, serde_json};

use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;
use serde_json::{json, Value};

use crate::stream::{raw_consume_rate, run_to_end, BenchObjects};
use bde_kit::config::Settings;
use bde_kit::course::analytics::Analytics;
use bde_kit::course::visit::{random_visit, Visit};
use bde_kit::error::{Error, Result};
use bde_kit::io::{kafka as kio, mariadb as mio, redis as rio};
use bde_kit::stream::trigger::Trigger;
use bde_kit::stream::{Clock, SystemClock};

/// Writes `n` random visits (seeded; dates a second apart per 100 visits from 2024-08-12 13:00:00)
/// as `part-NNNNN.json` files of `per_file` lines under `dir` (emptied first).
pub fn generate(dir: &Path, n: u64, per_file: u64, seed: u64) -> Result<Value> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| Error::file(dir, e))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::file(dir, e))?;
    let base = chrono::NaiveDate::from_ymd_opt(2024, 8, 12)
        .and_then(|d| d.and_hms_opt(13, 0, 0))
        .ok_or_else(|| Error::invalid("date"))?;
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
    let mut files = 0u64;
    let mut i = 0u64;
    while i < n {
        let path = dir.join(format!("part-{files:05}.json"));
        let f = std::fs::File::create(&path).map_err(|e| Error::file(&path, e))?;
        let mut w = BufWriter::new(f);
        let end = (i + per_file).min(n);
        while i < end {
            let v = random_visit(&mut rng, base + chrono::Duration::seconds((i / 100) as i64));
            writeln!(w, "{}", v.to_json()).map_err(|e| Error::file(&path, e))?;
            i += 1;
        }
        w.flush().map_err(|e| Error::file(&path, e))?;
        files += 1;
    }
    Ok(json!({"visits": n, "files": files}))
}

/// The `*.json` files of `dir`, sorted.
pub fn visit_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::file(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    v.sort();
    Ok(v)
}

/// How many visits (non-blank lines) the files under `dir` hold, read without keeping them.
pub fn count_lines(dir: &Path) -> Result<usize> {
    let mut n = 0;
    for p in visit_files(dir)? {
        let f = std::fs::File::open(&p).map_err(|e| Error::file(&p, e))?;
        for l in std::io::BufReader::new(f).lines() {
            n += usize::from(!l.map_err(|e| Error::file(&p, e))?.trim().is_empty());
        }
    }
    Ok(n)
}

/// The visit lines of the files under `dir` (sorted by file), blank lines left out.
pub fn read_lines(dir: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for p in visit_files(dir)? {
        let f = std::fs::File::open(&p).map_err(|e| Error::file(&p, e))?;
        for l in std::io::BufReader::new(f).lines() {
            let l = l.map_err(|e| Error::file(&p, e))?;
            if !l.trim().is_empty() {
                out.push(l);
            }
        }
    }
    Ok(out)
}

/// Produces the lines (key = the visit's country) as fast as the idempotent producer goes.
pub fn produce(settings: &Settings, topic: &str, lines: Vec<String>) -> Result<()> {
    let records = lines
        .into_iter()
        .map(|line| {
            let v: Visit = serde_json::from_str(&line)
                .map_err(|e| Error::invalid(format!("bad visit line {line:?}: {e}")))?;
            Ok((Some(v.country), line))
        })
        .collect::<Result<Vec<_>>>()?;
    kio::produce_all(settings, topic, records).map(|_| ())
}

/// `bde-bench produce`: creates `topic` (one partition) and produces the visits under `dir` to
/// it, key = country, so that every engine of the comparison reads the same topic and none
/// pays the produce in its measured process.
pub fn produce_dir(dir: &Path, topic: &str) -> Result<Value> {
    let settings = Settings::from_env();
    let lines = read_lines(dir)?;
    let visits = lines.len();
    kio::create_topics(&settings, &[topic], 1)?;
    let t0 = Instant::now();
    produce(&settings, topic, lines)?;
    Ok(json!({"topic": topic, "visits": visits, "seconds": t0.elapsed().as_secs_f64()}))
}

/// `bde-bench raw-consume`: the raw rdkafka consume rate of `topic` (the ceiling), in a process
/// of its own, marked as the measured phase.
pub fn raw_consume(topic: &str) -> Result<Value> {
    let settings = Settings::from_env();
    let marks = kio::watermarks(&settings, topic)?;
    let records: i64 = marks.iter().map(|(_, lo, hi)| hi - lo).sum();
    crate::phase::mark("start");
    let rate = raw_consume_rate(&settings, topic)?;
    crate::phase::mark("end");
    Ok(json!({"records": records, "rows_per_sec": rate}))
}

/// Produces the visits under `dir`, measures the raw consume rate, runs the analytics query
/// (available-now trigger, `max_records` per micro-batch, processing-time windows as the course,
/// carts rendered as Spark renders them) and returns rates and results: Redis totals per
/// country, the number of carts (their lines go to `carts_out` when given) and the rows and sum
/// of `visit_stats`.
///
/// With `topic` (produced beforehand by `bde-bench produce`), the query reads that topic and
/// the process neither produces nor measures the raw rate (`bde-bench raw-consume` does, in a
/// process of its own): what it holds is the query's alone. The query's run is marked as the
/// measured phase ([`crate::phase::mark`]).
pub fn run_stream(
    dir: &Path,
    carts_out: Option<&Path>,
    max_records: usize,
    topic: Option<&str>,
) -> Result<Value> {
    let settings = Settings::from_env();
    let lines = if topic.is_none() {
        read_lines(dir)?
    } else {
        Vec::new()
    };
    let visits = if topic.is_none() {
        lines.len()
    } else {
        count_lines(dir)?
    };
    if visits == 0 {
        return Err(Error::invalid(format!(
            "no visits under {}: run `bde-bench gen-visits` first",
            dir.display()
        )));
    }
    let given = topic.is_some();
    let objects = BenchObjects::create_on(&settings, 1, topic)?;
    let BenchObjects {
        tag,
        topic,
        carts,
        key,
        db,
        cp_root,
        ..
    } = &objects;
    let result = (|| {
        let (produce_s, raw) = if given {
            (None, None)
        } else {
            let t0 = Instant::now();
            produce(&settings, topic, lines)?;
            let produce_s = t0.elapsed().as_secs_f64();
            eprintln!("bde-bench stream: produced {visits} visits in {produce_s:.1} s");
            let raw = raw_consume_rate(&settings, topic)?;
            eprintln!("bde-bench stream: raw consume {raw:.0} records/s");
            (Some(produce_s), Some(raw))
        };
        let a = Analytics {
            trigger: Trigger::AvailableNow,
            max_records,
            event_time: false,
            spark_csv: true,
            ..objects.analytics(format!("bench-{tag}"))
        };
        crate::phase::mark("start");
        let t0 = Instant::now();
        let t0_ms = SystemClock.now_ms(); // the engine's clock: batch times are on it
        let q = a
            .query(&settings)
            .checkpoint_dir(cp_root)
            .quiet(true)
            .start(a.branches())?;
        let s = run_to_end(&q, visits)?;
        let secs = t0.elapsed().as_secs_f64();
        crate::phase::mark("end");
        // The query keeps running empty batches until its last 5-second windows pass the
        // watermark (about 10 s of wall time); "data" ends with the last batch that read rows.
        let data_secs = s
            .batches
            .iter()
            .filter(|b| b.rows_in > 0)
            .map(|b| (b.batch_time_ms + b.duration_ms as i64 - t0_ms) as f64 / 1000.0)
            .fold(0.0f64, f64::max)
            .clamp(1e-6, secs.max(1e-6));
        let data_batches = s.batches.iter().filter(|b| b.rows_in > 0).count();
        // From start() to the first batch: opening the sinks and the reader, and the end offsets
        // of an available-now run (they wait behind the broker's first fetch of the backlog).
        let start_ms = s
            .batches
            .first()
            .map_or(0, |b| (b.batch_time_ms - t0_ms).max(0));
        eprintln!("bde-bench stream: analytics {visits} visits in {data_secs:.1} s ({data_batches} batches), {secs:.1} s with the window drain");
        let totals: serde_json::Map<String, Value> = rio::scores(&settings, key)?
            .into_iter()
            .map(|(c, v)| (c, json!(v as i64)))
            .collect();
        let cart_lines: Vec<String> = kio::read_all(&settings, carts, Duration::from_secs(300))?
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        if let Some(p) = carts_out {
            let f = std::fs::File::create(p).map_err(|e| Error::file(p, e))?;
            let mut w = BufWriter::new(f);
            for l in &cart_lines {
                writeln!(w, "{l}").map_err(|e| Error::file(p, e))?;
            }
            w.flush().map_err(|e| Error::file(p, e))?;
        }
        let mut c = mio::conn(&settings, Some(db))?;
        let (stat_rows, stat_sum): (i64, i64) = c
            .query_first(
                "SELECT COUNT(*), CAST(COALESCE(SUM(DURATION), 0) AS SIGNED) FROM visit_stats",
            )
            .map_err(|e| mio::map_err(&settings.mariadb, "read visit_stats", e))?
            .unwrap_or((0, 0));
        Ok(json!({
            "engine": "bde_kit (rdkafka + micro-batches)", "visits": visits, "batches": data_batches, "all_batches": s.batches.len(), "data_seconds": data_secs, "start_ms": start_ms,
            "produce_seconds": produce_s, "raw_consume_per_sec": raw, "seconds": secs, "rows_per_sec": visits as f64 / data_secs,
            "steps_ms": s.steps_total().into_iter().map(|(n, ms)| json!([n, ms])).collect::<Vec<_>>(),
            "redis_totals": totals, "carts": cart_lines.len(), "visit_stats_rows": stat_rows, "visit_stats_sum": stat_sum,
        }))
    })();
    objects.remove(&settings);
    result
}
