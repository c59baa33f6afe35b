//! `bde-bench chart --results build/bench/results.json --out build/bench/ratios.svg`: the ratios
//! of a benchmark run (the file `benches/compare.py` writes) as one SVG bar chart, drawn with the
//! kit's own [`Chart`]. One bar per batch scale and peer: the peer's best query time divided by
//! bde_kit's (above 1, bde_kit is faster); then, when the run has a stream section, bde_kit's
//! end-to-end streaming rate divided by the job's floor (`bde-bench floor`) and by the raw rdkafka
//! consume rate (its ceiling); both at most about 1.
//! PySpark's ratios (tens) get a panel of their own so the others (around 1) stay readable.

// The kit's re-exports: the same crates, versions and features the kit compiles with.
use bde_kit::serde_json;

use std::path::Path;

use serde_json::{json, Value};

use bde_kit::error::{Error, Result};
use bde_kit::show::Chart;

/// The batch peers as `compare.py` names them in results.json, with their labels, in its order.
pub const PEERS: [(&str, &str); 4] = [
    ("pyspark", "PySpark"),
    ("polars_sql", "Polars SQL"),
    ("polars_lazy", "Polars lazy"),
    ("duckdb", "DuckDB"),
];

/// The smallest of a result's `seconds` (its best run), if it has any.
fn best_seconds(result: &Value) -> Option<f64> {
    result
        .get("seconds")?
        .as_array()?
        .iter()
        .filter_map(Value::as_f64)
        .filter(|s| *s > 0.0)
        .reduce(f64::min)
}

/// `2000` → `"2k"`, `1000000` → `"1M"`, `20000000` → `"20M"`, `1500000` → `"1.5M"`.
fn scale_label(rows: u64) -> String {
    if rows >= 1_000_000 {
        format!("{}M", rows as f64 / 1e6)
    } else if rows >= 1_000 {
        format!("{}k", rows as f64 / 1e3)
    } else {
        rows.to_string()
    }
}

/// The bars of a results document: (label, ratio), batch scales in increasing size, peers in
/// [`PEERS`] order, the stream bar last. Peers that did not run (or crashed) have no bar.
pub fn ratios(results: &Value) -> Result<Vec<(String, f64)>> {
    let doc = results
        .as_object()
        .ok_or_else(|| Error::invalid("the results are not a JSON object"))?;
    let mut scales: Vec<(u64, &Value)> = doc
        .iter()
        .filter(|(k, _)| k.starts_with("batch_"))
        .filter_map(|(k, v)| {
            let rows = v
                .pointer("/generate/rows")
                .and_then(Value::as_u64)
                .or_else(|| k["batch_".len()..].parse().ok())?;
            Some((rows, v))
        })
        .collect();
    scales.sort_by_key(|(rows, _)| *rows);
    let mut bars = Vec::new();
    for (rows, scale) in scales {
        let Some(bde) = scale.get("bde").and_then(best_seconds) else {
            continue;
        };
        for (key, label) in PEERS {
            if let Some(peer) = scale.get(key).and_then(best_seconds) {
                let r = peer / bde;
                bars.push((format!("{label} {}: {r:.2}×", scale_label(rows)), r));
            }
        }
    }
    let stream = results.pointer("/stream/bde");
    let rate = stream
        .and_then(|s| s.get("rows_per_sec"))
        .and_then(Value::as_f64);
    // The ceiling's own step (`bde-bench raw-consume`), or, in results of runs before it had one,
    // the rate the stream step measured itself.
    let ceiling = results
        .pointer("/stream/raw_consume/rows_per_sec")
        .or_else(|| stream.and_then(|s| s.get("raw_consume_per_sec")))
        .and_then(Value::as_f64);
    let floor = results
        .pointer("/stream/floor/rows_per_sec")
        .and_then(Value::as_f64);
    if let (Some(rate), Some(floor)) = (rate, floor) {
        if floor > 0.0 {
            let r = rate / floor;
            bars.push((format!("stream/job's floor: {r:.3}×"), r));
        }
    }
    if let (Some(rate), Some(ceiling)) = (rate, ceiling) {
        if ceiling > 0.0 {
            let r = rate / ceiling;
            bars.push((format!("stream/raw consume: {r:.3}×"), r));
        }
    }
    Ok(bars)
}

/// The bars split into panels, each drawn on its own scale: bde_kit against PySpark (ratios in
/// the tens) and against the single-machine peers and the stream ceiling (ratios around 1).
pub fn panels(bars: &[(String, f64)]) -> Vec<(&'static str, Vec<(String, f64)>)> {
    let (spark, other): (Vec<_>, Vec<_>) = bars
        .iter()
        .cloned()
        .partition(|(l, _)| l.starts_with("PySpark "));
    [("bde_kit against PySpark: PySpark query time / bde_kit's", spark),
     ("against Polars and DuckDB (peer time / bde_kit's), the stream's floor and ceiling (bde_kit rate / theirs)", other)]
    .into_iter()
    .filter(|(_, b)| !b.is_empty())
    .collect()
}

/// Reads `results`, draws the ratios and writes the SVG to `out` (its folder is created): one
/// [`Chart`] per panel, stacked in one SVG document.
pub fn run(results: &Path, out: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(results).map_err(|e| Error::file(results, e))?;
    let doc: Value = serde_json::from_str(&text)
        .map_err(|e| Error::invalid(format!("{}: {e}", results.display())))?;
    let bars = ratios(&doc)?;
    if bars.is_empty() {
        return Err(Error::invalid(format!(
            "{}: no batch or stream figures to chart",
            results.display()
        )));
    }
    let date = doc
        .get("date")
        .and_then(Value::as_str)
        .map(|d| format!(", run of {d}"))
        .unwrap_or_default();
    let x_desc =
        format!("above 1: bde_kit faster; batch ratios from each engine's best query run{date}");
    let (panel_h, mut y, mut width) = (400u32, 0u32, 0u32);
    let mut body = String::new();
    for (title, bars) in panels(&bars) {
        let (labels, values): (Vec<String>, Vec<f64>) = bars.into_iter().unzip();
        let w = (150 * labels.len() as u32).max(900);
        let svg = Chart::bar(title, labels, values)
            .axes(x_desc.as_str(), "ratio")
            .size(w, panel_h)
            .to_svg()?;
        let inner = svg
            .strip_prefix("<svg ")
            .ok_or_else(|| Error::invalid("the chart is not an <svg> document"))?;
        body.push_str(&format!("<svg x=\"0\" y=\"{y}\" {inner}\n"));
        y += panel_h;
        width = width.max(w);
    }
    let svg = format!(
        "<svg width=\"{width}\" height=\"{y}\" viewBox=\"0 0 {width} {y}\" xmlns=\"http://www.w3.org/2000/svg\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n{body}</svg>\n"
    );
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::file(dir, e))?;
    }
    std::fs::write(out, &svg).map_err(|e| Error::file(out, e))?;
    let listed: Vec<Value> = bars
        .iter()
        .map(|(l, v)| json!({"label": l, "ratio": v}))
        .collect();
    Ok(
        json!({"out": out.display().to_string(), "bars": bars.len(), "ratios": listed, "bytes": svg.len()}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_per_scale_and_peer_then_stream() {
        let doc = json!({
            "batch_20000000": {"generate": {"rows": 20_000_000}, "bde": {"seconds": [11.0, 10.0]}, "duckdb": {"seconds": [24.0, 20.0]}},
            "batch_1000000": {"generate": {"rows": 1_000_000}, "bde": {"seconds": [0.5, 0.4]},
                              "pyspark": {"seconds": [4.0, 3.2]}, "polars_sql": {"seconds": [0.2]}},
            "stream": {"bde": {"rows_per_sec": 100.0, "raw_consume_per_sec": 400.0},
                       "floor": {"rows_per_sec": 200.0}},
        });
        let bars = ratios(&doc).expect("ratios");
        let labels: Vec<&str> = bars.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(
            labels,
            [
                "PySpark 1M: 8.00×",
                "Polars SQL 1M: 0.50×",
                "DuckDB 20M: 2.00×",
                "stream/job's floor: 0.500×",
                "stream/raw consume: 0.250×"
            ]
        );
    }

    #[test]
    fn the_ceiling_comes_from_its_own_step() {
        let doc = json!({
            "stream": {"bde": {"rows_per_sec": 100.0, "raw_consume_per_sec": null},
                       "raw_consume": {"rows_per_sec": 500.0}},
        });
        let bars = ratios(&doc).expect("ratios");
        assert_eq!(bars, [("stream/raw consume: 0.200×".to_string(), 0.2)]);
    }

    #[test]
    fn pyspark_gets_its_own_panel() {
        let bars = vec![
            ("PySpark 1M: 8.00×".to_string(), 8.0),
            ("DuckDB 1M: 2.00×".to_string(), 2.0),
        ];
        let p = panels(&bars);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].1, bars[..1]);
        assert_eq!(panels(&bars[1..]).len(), 1);
    }

    #[test]
    fn no_batch_no_bars() {
        assert!(ratios(&json!({"latency": {}})).expect("ratios").is_empty());
        assert!(ratios(&json!([1, 2])).is_err());
        assert_eq!(scale_label(2_000), "2k");
        assert_eq!(scale_label(1_500_000), "1.5M");
    }
}
