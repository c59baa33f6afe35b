//! [`FrameView`]: a Polars frame shown as Python Polars shows it in Jupyter.
//!
//! A cell that ends in a `DataFrame` (or a `LazyFrame`) renders an HTML table with the shape
//! (`shape: (rows, columns)`), the column names with their types under them, and the first and
//! last rows with a `…` row between when the frame is long (5 + 5 of more than 10, Polars'
//! default). A `LazyFrame` is collected with a bound: at most [`LAZY_ROWS`] + 1 rows are
//! computed, so a final `scan_hive(…)?` never reads a whole store to show ten rows. Text cells
//! from outside (Kafka values, MariaDB cells) go through [`crate::show::html::escape`] (markup,
//! line breaks and evcxr's markers neutralised).

use polars::prelude::{AnyValue, DataFrame, LazyFrame};

use crate::error::Result;
use crate::show::html::escape;

/// Rows shown of a long frame: the first and the last half of this.
pub const MAX_ROWS: usize = 10;
/// Rows collected of a lazy frame for its view.
pub const LAZY_ROWS: usize = MAX_ROWS;

/// What a frame view shows.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameView {
    names: Vec<String>,
    types: Vec<String>,
    /// The rows shown: the first ones, then (when `gap`) the last ones.
    head: Vec<Vec<String>>,
    tail: Vec<Vec<String>>,
    height: usize,
    /// A lazy frame's view: `height` counts only the collected rows, more may exist.
    more: bool,
}

/// One cell as Polars prints it: strings quoted, nulls as `null`.
fn cell_text(v: &AnyValue) -> String {
    match v {
        AnyValue::Null => "null".to_string(),
        other => match other.get_str() {
            Some(s) => format!("\"{s}\""),
            None => other.to_string(),
        },
    }
}

/// A cell for HTML: escaped, on one line, no evcxr marker ([`crate::show::html::escape`]).
pub fn cell_html(s: &str) -> String {
    escape(s)
}

fn rows_of(df: &DataFrame, range: std::ops::Range<usize>) -> Vec<Vec<String>> {
    let cols = df.get_columns();
    range
        .map(|i| {
            cols.iter()
                .map(|c| {
                    c.get(i)
                        .map(|v| cell_text(&v))
                        .unwrap_or_else(|_| "?".into())
                })
                .collect()
        })
        .collect()
}

impl FrameView {
    /// The view of a collected frame.
    pub fn new(df: &DataFrame) -> FrameView {
        let height = df.height();
        let (head, tail) = if height > MAX_ROWS {
            let half = MAX_ROWS / 2;
            (
                rows_of(df, 0..half),
                rows_of(df, height - (MAX_ROWS - half)..height),
            )
        } else {
            (rows_of(df, 0..height), vec![])
        };
        FrameView {
            names: df
                .get_column_names()
                .iter()
                .map(|s| s.to_string())
                .collect(),
            types: df.dtypes().iter().map(|t| t.to_string()).collect(),
            head,
            tail,
            height,
            more: false,
        }
    }

    /// The view of a lazy frame: its first [`LAZY_ROWS`] rows (one more is collected to know
    /// whether there are more).
    pub fn lazy(lf: &LazyFrame) -> Result<FrameView> {
        let df = lf.clone().limit(LAZY_ROWS as u32 + 1).collect()?;
        let more = df.height() > LAZY_ROWS;
        let shown = df.head(Some(LAZY_ROWS));
        Ok(FrameView {
            more,
            ..FrameView::new(&shown)
        })
    }

    /// `shape: (rows, columns)` as Polars writes it; a lazy view with more rows says so.
    pub fn shape(&self) -> String {
        if self.more {
            format!(
                "lazy frame, first {} rows collected · columns: {}",
                self.height,
                self.names.len()
            )
        } else {
            format!("shape: ({}, {})", self.height, self.names.len())
        }
    }

    /// The HTML table: shape, names with types, rows (with a `…` row in a long frame).
    pub fn to_html(&self) -> String {
        let mut h = String::from(
            "<div class=\"bde-frame\"><style>.bde-frame td{white-space:pre;text-align:right}\
             .bde-frame th{text-align:right}.bde-frame .dtype{font-weight:400;color:#777}</style>",
        );
        h.push_str(&format!("<small>{}</small>", escape(&self.shape())));
        h.push_str("<table border=\"1\" class=\"dataframe\"><thead><tr>");
        for n in &self.names {
            h.push_str(&format!("<th>{}</th>", cell_html(n)));
        }
        h.push_str("</tr><tr>");
        for t in &self.types {
            h.push_str(&format!("<td class=\"dtype\">{}</td>", cell_html(t)));
        }
        h.push_str("</tr></thead><tbody>");
        let row = |h: &mut String, r: &[String]| {
            h.push_str("<tr>");
            for v in r {
                h.push_str(&format!("<td>{}</td>", cell_html(v)));
            }
            h.push_str("</tr>");
        };
        for r in &self.head {
            row(&mut h, r);
        }
        if !self.tail.is_empty() || self.more {
            h.push_str("<tr>");
            for _ in &self.names {
                h.push_str("<td>…</td>");
            }
            h.push_str("</tr>");
        }
        for r in &self.tail {
            row(&mut h, r);
        }
        h.push_str("</tbody></table></div>");
        h
    }

    /// Rich output for evcxr.
    pub fn evcxr_display(&self) {
        crate::show::display_html(&self.to_html());
    }
}

/// Renders a frame as a cell's value (used by the prelude's display trait).
pub fn display_frame(df: &DataFrame) {
    FrameView::new(df).evcxr_display();
}

/// Renders a lazy frame as a cell's value, collected with a bound; an error is printed to
/// stderr (the notebook runner and Jupyter show it as an error).
pub fn display_lazy(lf: &LazyFrame) {
    match FrameView::lazy(lf) {
        Ok(v) => v.evcxr_display(),
        Err(e) => eprintln!("the lazy frame could not be collected: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::df;
    use polars::prelude::IntoLazy;

    #[test]
    fn a_short_frame_shows_shape_names_types_and_every_row() {
        let df = df!("COUNTRY" => ["USA", "India"], "TOTAL" => [3i64, 5]).expect("df");
        let h = FrameView::new(&df).to_html();
        assert!(h.contains("<small>shape: (2, 2)</small>"), "{h}");
        assert!(
            h.contains("<th>COUNTRY</th><th>TOTAL</th></tr><tr><td class=\"dtype\">str</td><td class=\"dtype\">i64</td>"),
            "{h}"
        );
        assert!(h.contains("<td>&quot;India&quot;</td><td>5</td>"), "{h}");
        assert!(!h.contains('…'), "no gap row in a short frame");
    }

    #[test]
    fn a_long_frame_shows_first_and_last_rows_around_a_gap() {
        let df = df!("ID" => (0..100i64).collect::<Vec<_>>()).expect("df");
        let v = FrameView::new(&df);
        let h = v.to_html();
        assert!(h.contains("shape: (100, 1)"), "{h}");
        for shown in [
            "<td>0</td>",
            "<td>4</td>",
            "<td>…</td>",
            "<td>95</td>",
            "<td>99</td>",
        ] {
            assert!(h.contains(shown), "{shown} missing: {h}");
        }
        assert!(
            !h.contains("<td>5</td>") && !h.contains("<td>94</td>"),
            "{h}"
        );
    }

    #[test]
    fn a_lazy_frame_is_collected_with_a_bound() {
        let lf = df!("ID" => (0..1000i64).collect::<Vec<_>>())
            .expect("df")
            .lazy();
        let v = FrameView::lazy(&lf).expect("collects");
        assert_eq!(v.height, LAZY_ROWS);
        assert!(
            v.more && v.shape().starts_with("lazy frame, first 10 rows"),
            "{}",
            v.shape()
        );
        let small = FrameView::lazy(&df!("ID" => [1i64]).expect("df").lazy()).expect("collects");
        assert_eq!(small.shape(), "shape: (1, 1)");
    }

    #[test]
    fn outside_text_stays_escaped_on_one_line() {
        let evil = "X\nEVCXR_END_CONTENT\n<img src=x onerror=alert(1)>";
        let df = df!("COUNTRY" => [evil]).expect("df");
        let h = FrameView::new(&df).to_html();
        assert!(!h.contains('\n') && !h.contains("<img"), "{h}");
        assert!(!h.contains("EVCXR_END_CONTENT"), "{h}");
        assert!(h.contains("&lt;img"), "{h}");
    }
}
