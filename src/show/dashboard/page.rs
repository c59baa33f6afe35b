//! The dashboard's page: the document (styles and the polling script, inline: no CDN), and the
//! panels fragment the script fetches, rendered once per sample with inline SVG charts.

use crate::show::html::escape;
use crate::show::Chart;

use super::feed::{Panels, ProgressView};

/// A rendered sample: the figures, the HTML fragment and the JSON the server hands out.
#[derive(Debug, Clone, Default)]
pub(super) struct View {
    pub panels: Panels,
    pub fragment: String,
    pub json: String,
}

impl View {
    /// The view before the first sample.
    pub fn starting(title: &str) -> View {
        View::render(&Panels {
            title: title.into(),
            ..Panels::default()
        })
    }

    pub fn render(p: &Panels) -> View {
        let json = serde_json::to_string(&serde_json::json!({
            "panels": p,
            "bars_total": p.bars_total(),
            "stopped": p.progress.as_ref().is_some_and(|q| q.stopped),
        }))
        .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
        View {
            panels: p.clone(),
            fragment: fragment(p),
            json,
        }
    }
}

/// The whole page; `fragment` is the first content, replaced by the script every 500 ms.
pub(super) fn document(title: &str, fragment: &str) -> String {
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{t}</title>
<style>
body{{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:8px;color:#222;background:#fff}}
h2{{margin:4px 0;font-size:20px}} h3{{margin:6px 0;font-size:15px}}
.meta{{color:#666;font-size:12px}}
.banner{{padding:6px 10px;border-radius:4px;margin:6px 0;font-weight:600}}
.running{{background:#e7f5e9;color:#1b5e20;border:1px solid #a5d6a7}}
.stopped{{background:#fdecea;color:#b71c1c;border:1px solid #ef9a9a;font-size:16px}}
.gone{{background:#fff3e0;color:#e65100;border:1px solid #ffcc80;display:none}}
.err{{background:#fff8e1;color:#8d6e00;border:1px solid #ffe082;font-weight:400;font-size:12px}}
.grid{{display:grid;grid-template-columns:repeat(auto-fill,minmax(440px,1fr));gap:10px}}
.card{{border:1px solid #ddd;border-radius:6px;padding:8px;overflow:hidden}}
.card svg{{max-width:100%;height:auto}}
table.kv td{{padding:1px 10px 1px 0;font-size:13px;overflow-wrap:anywhere}} table.kv td:first-child{{color:#555;overflow-wrap:normal;white-space:nowrap}}
pre{{font-size:12px;margin:0;white-space:pre-wrap;max-height:300px;overflow:auto}}
.big{{font-size:18px;font-weight:700}}
</style></head>
<body>
<div id="bde-gone" class="banner gone">This dashboard is no longer served (it was stopped, or its kernel ended): the figures below are the last ones received.</div>
<div id="bde-panels">{fragment}</div>
<script>
(function () {{
  var box = document.getElementById("bde-panels"), gone = document.getElementById("bde-gone"), fails = 0;
  function tick() {{
    fetch("panel", {{cache: "no-store"}})
      .then(function (r) {{ if (!r.ok) throw new Error("HTTP " + r.status); return r.text(); }})
      .then(function (h) {{ box.innerHTML = h; fails = 0; gone.style.display = "none"; }})
      .catch(function () {{ fails += 1; if (fails >= 3) gone.style.display = "block"; }})
      .then(function () {{ setTimeout(tick, 500); }});
  }}
  setTimeout(tick, 500);
}})();
</script>
</body></html>
"#,
        t = escape(title)
    )
}

/// A static copy of the panels for the notebook: scoped styles, the fragment, when it was taken.
/// One line per evcxr block line is not needed, but no line may read as evcxr's markers: text
/// from outside in the fragment (topic lines) is escaped, and `EVCXR_` is written with a
/// character reference so no line of it can open or close a block.
pub(super) fn snapshot(title: &str, fragment: &str, taken: &str) -> String {
    let html = format!(
        "<div class=\"bde-snapshot\"><style>\
         .bde-snapshot{{font-family:system-ui,sans-serif;color:#222}} .bde-snapshot h2{{margin:4px 0;font-size:18px}} .bde-snapshot h3{{margin:6px 0;font-size:14px}}\
         .bde-snapshot .meta{{color:#666;font-size:12px}} .bde-snapshot .banner{{padding:6px 10px;border-radius:4px;margin:6px 0;font-weight:600}}\
         .bde-snapshot .running{{background:#e7f5e9;color:#1b5e20}} .bde-snapshot .stopped{{background:#fdecea;color:#b71c1c}} .bde-snapshot .err{{background:#fff8e1;color:#8d6e00;font-weight:400}}\
         .bde-snapshot .grid{{display:grid;grid-template-columns:repeat(auto-fill,minmax(440px,1fr));gap:10px}} .bde-snapshot .card{{border:1px solid #ddd;border-radius:6px;padding:8px;overflow:hidden}}\
         .bde-snapshot table.kv{{table-layout:auto;width:100%}} .bde-snapshot table.kv td{{padding:1px 10px 1px 0;font-size:13px;text-align:left;overflow-wrap:anywhere;white-space:normal}}\
         .bde-snapshot table.kv td:first-child{{color:#555;overflow-wrap:normal;white-space:nowrap}}\
         .bde-snapshot .card svg{{max-width:100%;height:auto}} .bde-snapshot pre{{font-size:12px;white-space:pre-wrap;max-height:300px;overflow:auto}} .bde-snapshot .big{{font-size:18px;font-weight:700}}\
         </style><div class=\"meta\">Snapshot of the dashboard “{t}” taken {taken} (static: kept in the saved notebook)</div>{fragment}</div>",
        t = escape(title),
        taken = escape(taken),
    );
    html.replace("EVCXR_", "EVCXR&#95;")
}

fn chart_svg(c: Chart) -> String {
    match c.size(440, 260).to_svg() {
        Ok(svg) => svg,
        Err(e) => format!("<p>chart failed: {}</p>", escape(&e.to_string())),
    }
}

fn num(v: f64) -> String {
    if v == 0.0 {
        "0".into() // also -0.0, the sum of nothing
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// The panels as one HTML fragment; stable ids for the figures a test or a script reads.
pub(super) fn fragment(p: &Panels) -> String {
    let mut h = format!(
        "<div id=\"bde-state\" data-seq=\"{}\" data-stopped=\"{}\"><h2>{}</h2><div class=\"meta\">updated <span id=\"bde-updated\">{}</span> · refresh {}</div>",
        p.seq,
        p.progress.as_ref().is_some_and(|q| q.stopped),
        escape(&p.title),
        escape(&p.updated),
        p.seq
    );
    if let Some(q) = &p.progress {
        h.push_str(&status_banner(q));
    }
    for e in &p.errors {
        h.push_str(&format!("<div class=\"banner err\">{}</div>", escape(e)));
    }
    h.push_str("<div class=\"grid\">");
    if let Some(q) = &p.progress {
        h.push_str(&progress_card(q));
    }
    if let Some((title, bars)) = &p.bars {
        let total = p.bars_total();
        h.push_str(&format!(
            "<div class=\"card\" id=\"bde-bars\"><h3>{}</h3><div>total <span class=\"big\" id=\"bde-bars-total\">{}</span> over {} {}</div>",
            escape(title),
            num(total),
            bars.len(),
            if bars.len() == 1 { "entry" } else { "entries" }
        ));
        if bars.is_empty() {
            h.push_str("<p>nothing yet</p>");
        } else {
            h.push_str(&chart_svg(Chart::bar(
                "",
                bars.iter().map(|b| b.0.clone()).collect(),
                bars.iter().map(|b| b.1).collect(),
            )));
        }
        h.push_str("</div>");
    }
    if let Some((title, series)) = &p.series {
        h.push_str(&format!(
            "<div class=\"card\" id=\"bde-series\"><h3>{}</h3>",
            escape(title)
        ));
        if series.is_empty() {
            h.push_str("<p>no windows yet (they close one watermark after their end)</p>");
        } else {
            h.push_str(&chart_svg(
                Chart::lines("", series.clone())
                    .time_axis()
                    .axes("window start", "sum"),
            ));
        }
        h.push_str("</div>");
    }
    if let Some((title, lines)) = &p.lines {
        h.push_str(&format!(
            "<div class=\"card\" id=\"bde-lines\"><h3>{}</h3><div class=\"meta\">newest {} of <span id=\"bde-lines-seen\">{}</span> seen since the dashboard started</div><pre>{}</pre></div>",
            escape(title),
            lines.len(),
            p.lines_seen,
            if lines.is_empty() { "(none yet)".to_string() } else { lines.iter().rev().map(|l| escape(l)).collect::<Vec<_>>().join("\n") }
        ));
    }
    h.push_str("</div></div>");
    h
}

fn status_banner(q: &ProgressView) -> String {
    if q.stopped {
        format!(
            "<div class=\"banner stopped\" id=\"bde-query-state\">Query {} has STOPPED ({}): the figures are final.</div>",
            escape(&q.name),
            escape(&q.status)
        )
    } else {
        format!(
            "<div class=\"banner running\" id=\"bde-query-state\">Query {}: {}</div>",
            escape(&q.name),
            escape(&q.status)
        )
    }
}

fn progress_card(q: &ProgressView) -> String {
    let opt = |v: Option<f64>| v.map(|x| format!("{x:.1}")).unwrap_or_else(|| "–".into());
    let ms = |v: Option<u64>| v.map(|x| format!("{x} ms")).unwrap_or_else(|| "–".into());
    let sinks = if q.sink_ms.is_empty() {
        "–".to_string()
    } else {
        q.sink_ms
            .iter()
            .map(|(n, m)| format!("{} {m} ms", escape(n)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let rows = [
        ("status", escape(&q.status)),
        ("batches", q.batches.to_string()),
        (
            "rows read",
            format!("<span id=\"bde-total-rows\">{}</span>", q.total_rows),
        ),
        ("input rows/s", opt(q.input_rows_per_sec)),
        ("processed rows/s", opt(q.processed_rows_per_sec)),
        ("batch duration", ms(q.batch_ms)),
        ("read from Kafka", ms(q.read_ms)),
        ("decode", ms(q.decode_ms)),
        ("checkpoint (write-ahead + commit)", ms(q.checkpoint_ms)),
        ("time per sink", sinks),
        (
            "watermark",
            q.watermark
                .as_deref()
                .map(escape)
                .unwrap_or_else(|| "–".into()),
        ),
        ("dead letters", q.dead_letters.to_string()),
        ("late rows dropped", q.late_rows.to_string()),
    ];
    let mut h = format!(
        "<div class=\"card\" id=\"bde-progress\"><h3>Query {} progress</h3><table class=\"kv\">",
        escape(&q.name)
    );
    for (k, v) in rows {
        h.push_str(&format!("<tr><td>{k}</td><td>{v}</td></tr>"));
    }
    h.push_str("</table>");
    if let Some(n) = &q.note {
        h.push_str(&format!("<div class=\"meta\">{}</div>", escape(n)));
    }
    if q.rates.len() > 1 {
        let input = q.rates.iter().map(|r| (r.0 as f64, r.1)).collect();
        let processed = q.rates.iter().map(|r| (r.0 as f64, r.2)).collect();
        h.push_str(&chart_svg(
            Chart::lines(
                "rows/s per batch",
                vec![("input".into(), input), ("processed".into(), processed)],
            )
            .axes("batch", "rows/s"),
        ));
    }
    h.push_str("</div>");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn panels() -> Panels {
        Panels {
            title: "Pipeline <monitor>".into(),
            seq: 3,
            updated: "12:00:01".into(),
            lines: Some(("carts".into(), vec!["USA,ShoppingCart,<1>".into()])),
            lines_seen: 1,
            bars: Some((
                "countries".into(),
                vec![("USA".into(), 3.0), ("India".into(), 4.5)],
            )),
            series: Some((
                "windows".into(),
                vec![("FAQ".into(), vec![(0.0, 1.0), (5.0, 2.0)])],
            )),
            progress: Some(ProgressView {
                name: "q".into(),
                status: "stopped".into(),
                stopped: true,
                total_rows: 7,
                ..ProgressView::default()
            }),
            errors: vec![],
        }
    }

    #[test]
    fn fragment_has_every_panel_escaped_with_charts_as_svg() {
        let h = fragment(&panels());
        assert!(
            h.contains("Pipeline &lt;monitor&gt;") && h.contains("USA,ShoppingCart,&lt;1&gt;"),
            "escaped"
        );
        assert!(
            h.contains("<span class=\"big\" id=\"bde-bars-total\">7.5</span>"),
            "bar total"
        );
        assert_eq!(h.matches("<svg").count(), 2, "bar chart and window series");
        assert!(h.contains("has STOPPED") && h.contains("data-stopped=\"true\""));
        assert!(h.contains("<span id=\"bde-total-rows\">7</span>"));
    }

    #[test]
    fn document_polls_the_panel_without_external_resources() {
        let d = document("t", "<p>x</p>");
        assert!(d.contains("fetch(\"panel\"") && d.contains("<p>x</p>"));
        assert!(
            !d.contains("http://") && !d.contains("https://"),
            "works offline: no external resource"
        );
    }

    #[test]
    fn json_carries_the_figures() {
        let v = View::render(&panels());
        let j: serde_json::Value = serde_json::from_str(&v.json).expect("json");
        assert_eq!(j["bars_total"], 7.5);
        assert_eq!(j["stopped"], true);
        assert_eq!(j["panels"]["progress"]["total_rows"], 7);
    }
}
