//! [`Table`]: the first rows of a DataFrame, like Spark's `df.show(n)`.
//!
//! In Jupyter (through evcxr) it renders as an HTML table; printed with `{}` it is Spark's
//! aligned text table with the footer `only showing top n rows`.

use std::fmt;

use polars::prelude::{AnyValue, DataFrame};

use crate::show::html::escape;
use crate::untrusted;

/// A rendered view of a table's first rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    title: Option<String>,
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
    total_rows: usize,
    limit: usize,
    /// The DataFrame a view was made of (its columns are shared, not copied): rows are rendered
    /// as far as the limit asks, never the whole frame.
    frame: Option<DataFrame>,
}

/// Spark's default for `show()`.
pub const DEFAULT_ROWS: usize = 20;

/// A cell as text; outside text is escaped when rendered (HTML and text alike).
fn cell_text(v: &AnyValue) -> String {
    match v {
        AnyValue::Null => "null".to_string(),
        other => match other.get_str() {
            Some(s) => s.to_string(),
            None => other.to_string(),
        },
    }
}

impl Table {
    /// A view of `df` (first 20 rows unless [`Table::rows`] says otherwise).
    pub fn new(df: &DataFrame) -> Table {
        let headers = df
            .get_column_names()
            .iter()
            .map(|s| s.to_string())
            .collect();
        let total_rows = df.height();
        let rows = Self::collect_rows(df, DEFAULT_ROWS);
        Table {
            title: None,
            headers,
            rows,
            total_rows,
            limit: DEFAULT_ROWS,
            frame: Some(df.clone()),
        }
    }

    fn collect_rows(df: &DataFrame, n: usize) -> Vec<Vec<String>> {
        let n = n.min(df.height());
        let cols = df.get_columns();
        (0..n)
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

    /// A view of rows given as strings (for results that are not DataFrames).
    pub fn from_rows(headers: &[&str], rows: Vec<Vec<String>>) -> Table {
        let total_rows = rows.len();
        Table {
            title: None,
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows,
            total_rows,
            limit: DEFAULT_ROWS,
            frame: None,
        }
    }

    /// Shows at most `n` rows.
    pub fn rows(mut self, n: usize) -> Table {
        self.limit = n;
        if let Some(df) = &self.frame {
            if self.rows.len() < n.min(self.total_rows) {
                self.rows = Self::collect_rows(df, n);
            }
        }
        self
    }

    /// A caption above the table.
    pub fn title(mut self, title: impl Into<String>) -> Table {
        self.title = Some(title.into());
        self
    }

    /// Number of rows in the whole table (not only the ones shown).
    pub fn total_rows(&self) -> usize {
        self.total_rows
    }

    fn shown(&self) -> &[Vec<String>] {
        &self.rows[..self.limit.min(self.rows.len())]
    }

    fn footer(&self) -> Option<String> {
        (self.total_rows > self.limit).then(|| format!("only showing top {} rows", self.limit))
    }

    /// The HTML table (with caption and footer).
    pub fn to_html(&self) -> String {
        let mut h = String::from("<div class=\"bde-table\">");
        if let Some(t) = &self.title {
            h.push_str(&format!("<h4>{}</h4>", escape(t)));
        }
        h.push_str("<table><thead><tr>");
        for c in &self.headers {
            h.push_str(&format!("<th>{}</th>", escape(c)));
        }
        h.push_str("</tr></thead><tbody>");
        for r in self.shown() {
            h.push_str("<tr>");
            for v in r {
                h.push_str(&format!("<td>{}</td>", escape(v)));
            }
            h.push_str("</tr>");
        }
        h.push_str("</tbody></table>");
        if let Some(f) = self.footer() {
            h.push_str(&format!(
                "<p><i>{}</i> of {}</p>",
                escape(&f),
                self.total_rows
            ));
        }
        h.push_str("</div>");
        h
    }

    /// Spark's text table (every cell, header and the title on one line, see
    /// [`crate::untrusted::line`]).
    pub fn to_text(&self) -> String {
        let one_line = |cells: &[String]| -> Vec<String> {
            cells
                .iter()
                .map(|c| untrusted::line(c).into_owned())
                .collect()
        };
        let headers = one_line(&self.headers);
        let rows: Vec<Vec<String>> = self.shown().iter().map(|r| one_line(r)).collect();
        let widths: Vec<usize> = headers
            .iter()
            .enumerate()
            .map(|(i, h)| {
                rows.iter()
                    .map(|r| r.get(i).map_or(0, |v| v.chars().count()))
                    .chain([h.chars().count(), 3])
                    .max()
                    .unwrap_or(3)
            })
            .collect();
        let sep: String = format!(
            "+{}+",
            widths
                .iter()
                .map(|w| "-".repeat(*w))
                .collect::<Vec<_>>()
                .join("+")
        );
        let line = |cells: &[String]| {
            let padded: Vec<String> = widths
                .iter()
                .enumerate()
                .map(|(i, w)| format!("{:>w$}", cells.get(i).map_or("", |s| s.as_str()), w = *w))
                .collect();
            format!("|{}|", padded.join("|"))
        };
        let mut out = String::new();
        if let Some(t) = &self.title {
            out.push_str(&untrusted::line(t));
            out.push('\n');
        }
        out.push_str(&sep);
        out.push('\n');
        out.push_str(&line(&headers));
        out.push('\n');
        out.push_str(&sep);
        out.push('\n');
        for r in &rows {
            out.push_str(&line(r));
            out.push('\n');
        }
        out.push_str(&sep);
        out.push('\n');
        if let Some(f) = self.footer() {
            out.push_str(&f);
            out.push('\n');
        }
        out
    }

    /// Rich output for evcxr.
    pub fn evcxr_display(&self) {
        crate::show::display_html(&self.to_html());
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::df;

    #[test]
    fn text_is_spark_like_with_footer() {
        let df = df!("ID" => [1i32, 2, 3, 4], "ITEM_NAME" => ["Folder", "Notebook", "Scissors", "Pencil Box"]).expect("df");
        let t = Table::new(&df).rows(3);
        let text = t.to_text();
        assert!(
            text.starts_with(
                "+---+---------+\n| ID|ITEM_NAME|\n+---+---------+\n|  1|   Folder|\n"
            ),
            "{text}"
        );
        assert!(text.ends_with("only showing top 3 rows\n"), "{text}");
        assert!(!text.contains("Pencil Box"));
    }

    #[test]
    fn html_escapes_and_counts() {
        let df = df!("a" => ["<b>"]).expect("df");
        let h = Table::new(&df).to_html();
        assert!(h.contains("<td>&lt;b&gt;</td>"), "{h}");
        assert!(!h.contains("only showing"));
    }

    #[test]
    fn a_view_renders_only_the_rows_it_shows() {
        let df = df!("ID" => (0..100i64).collect::<Vec<_>>()).expect("df");
        let t = Table::new(&df);
        assert_eq!(
            t.rows.len(),
            DEFAULT_ROWS,
            "a 100-row frame renders 20 rows for the default view"
        );
        let t = t.rows(50);
        assert_eq!(t.shown().len(), 50);
        assert!(t.to_text().ends_with("only showing top 50 rows\n"));
        let all = Table::new(&df).rows(500);
        assert_eq!(all.shown().len(), 100);
        assert!(!all.to_text().contains("only showing"));
    }
}
