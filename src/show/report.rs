//! [`Report`]: several tables, charts and notes composed into one HTML block.
//!
//! evcxr shows only the last rich block of a cell, so a cell that wants a table and a chart
//! returns one `Report`.

use std::fmt;

use crate::show::html::{escape, escape_text};
use crate::show::{Chart, Table};
use crate::untrusted;

enum Part {
    Heading(String),
    Text(String),
    Table(Table),
    Chart(Chart),
    Html(String),
}

/// A vertical stack of headings, text, tables and charts.
#[derive(Default)]
pub struct Report {
    parts: Vec<Part>,
}

impl Report {
    pub fn new() -> Report {
        Report::default()
    }

    pub fn heading(mut self, text: impl Into<String>) -> Report {
        self.parts.push(Part::Heading(text.into()));
        self
    }

    pub fn text(mut self, text: impl Into<String>) -> Report {
        self.parts.push(Part::Text(text.into()));
        self
    }

    pub fn table(mut self, table: Table) -> Report {
        self.parts.push(Part::Table(table));
        self
    }

    pub fn chart(mut self, chart: Chart) -> Report {
        self.parts.push(Part::Chart(chart));
        self
    }

    /// Raw HTML (trusted, produced by the kit).
    pub fn html(mut self, html: impl Into<String>) -> Report {
        self.parts.push(Part::Html(html.into()));
        self
    }

    /// One HTML block with every part, charts as inline SVG.
    pub fn to_html(&self) -> String {
        let mut h = String::from("<div class=\"bde-report\">");
        for p in &self.parts {
            match p {
                Part::Heading(t) => h.push_str(&format!("<h3>{}</h3>", escape(t))),
                Part::Text(t) => h.push_str(&format!("<pre>{}</pre>", escape_text(t))),
                Part::Table(t) => h.push_str(&t.to_html()),
                Part::Chart(c) => match c.to_svg() {
                    Ok(svg) => h.push_str(&format!("<div class=\"bde-chart\">{svg}</div>")),
                    Err(e) => {
                        h.push_str(&format!("<p>chart failed: {}</p>", escape(&e.to_string())))
                    }
                },
                Part::Html(x) => h.push_str(x),
            }
        }
        h.push_str("</div>");
        h
    }

    /// Rich output for evcxr.
    pub fn evcxr_display(&self) {
        crate::show::display_html(&self.to_html());
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.parts {
            match p {
                Part::Heading(t) => {
                    let t = untrusted::line(t);
                    writeln!(f, "\n{t}\n{}", "-".repeat(t.chars().count()))?
                }
                Part::Text(t) => writeln!(f, "{}", untrusted::text(t))?,
                Part::Table(t) => write!(f, "{t}")?,
                Part::Chart(_) => writeln!(f, "[chart]")?,
                Part::Html(_) => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_embeds_table_and_svg_in_one_block() {
        let t = Table::from_rows(&["k", "v"], vec![vec!["a".into(), "1".into()]]);
        let r = Report::new().heading("Stats").table(t).chart(Chart::bar(
            "c",
            vec!["a".into()],
            vec![1.0],
        ));
        let h = r.to_html();
        assert!(h.contains("<h3>Stats</h3>") && h.contains("<table>") && h.contains("<svg"));
    }
}
