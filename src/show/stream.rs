//! How a streaming query's [`Summary`] shows in a notebook: a table of the last batches and a
//! chart of rows/s per batch, as rich output in Jupyter and as text elsewhere. The data itself
//! lives in [`crate::stream::progress`]; rendering it is this layer's concern.

use std::fmt;

use crate::show::{Chart, Report, Table};
use crate::stream::clock::fmt_ms;
use crate::stream::Summary;

impl Summary {
    /// Table of the last batches and a chart of rows/s per batch.
    pub fn report(&self) -> Report {
        let rows: Vec<Vec<String>> = self
            .batches
            .iter()
            .rev()
            .take(20)
            .rev()
            .map(|p| {
                vec![
                    p.batch_id.to_string(),
                    p.rows_in.to_string(),
                    format!("{:.0}", p.rows_per_sec),
                    p.duration_ms.to_string(),
                    p.watermark_ms.map(fmt_ms).unwrap_or_default(),
                    p.sink_rows
                        .iter()
                        .map(|(n, r)| format!("{n}={r}"))
                        .collect::<Vec<_>>()
                        .join(" "),
                    p.dead_letters.to_string(),
                    p.late_rows.to_string(),
                ]
            })
            .collect();
        let table = Table::from_rows(
            &[
                "batch",
                "rows",
                "rows/s",
                "ms",
                "watermark",
                "sinks",
                "dead letters",
                "late",
            ],
            rows,
        );
        let points: Vec<(f64, f64)> = self
            .batches
            .iter()
            .map(|p| (p.batch_id as f64, p.rows_per_sec))
            .collect();
        let mut r = Report::new()
            .heading(format!("Query {} — {}", self.name, self.status))
            .text(format!(
                "{} batches, {} rows, {} dead letters, {} late rows dropped",
                self.batches.len(),
                self.total_rows,
                self.total_dead_letters,
                self.total_late
            ));
        if !self.checkpoint.as_os_str().is_empty() {
            r = r.text(format!("checkpoint: {}", self.checkpoint.display()));
        }
        r = r.table(table);
        if points.len() > 1 {
            r = r.chart(
                Chart::lines("rows/s per batch", vec![("rows/s".into(), points)])
                    .axes("batch", "rows/s"),
            );
        }
        r
    }

    /// Rich output for evcxr.
    pub fn evcxr_display(&self) {
        crate::show::display_html(&self.report().to_html());
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.report())
    }
}
