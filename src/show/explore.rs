//! Rendering of [`Explored`] (what an exploring call found): its tables as HTML for Jupyter,
//! aligned text elsewhere.
//!
//! Everything in it came from outside (keys, members, cells, record values): cell text is
//! escaped by [`Table`], titles and notes here, all through [`crate::untrusted`] (line breaks
//! and evcxr's `EVCXR_` markers written out), so no value can end evcxr's rich block early or
//! add markup.

use std::fmt;

use crate::explore::Explored;
use crate::show::html::escape;
use crate::show::Table;
use crate::untrusted;

/// Rows of each table shown in a notebook (the frame keeps every row read).
pub const SHOWN_ROWS: usize = 50;

impl Explored {
    /// The tables as [`Table`] views, captioned.
    pub fn views(&self) -> Vec<Table> {
        self.tables
            .iter()
            .map(|(caption, df)| Table::new(df).rows(SHOWN_ROWS).title(caption.clone()))
            .collect()
    }

    /// One HTML block: title, tables, notes.
    pub fn to_html(&self) -> String {
        let mut h = format!(
            "<div class=\"bde-explore\"><h3>{}</h3>",
            escape(&self.title)
        );
        for t in self.views() {
            h.push_str(&t.to_html());
        }
        for n in &self.notes {
            h.push_str(&format!("<p class=\"bde-note\"><i>{}</i></p>", escape(n)));
        }
        h.push_str("</div>");
        h
    }

    /// Rich output for evcxr.
    pub fn evcxr_display(&self) {
        crate::show::display_html(&self.to_html());
    }
}

impl fmt::Display for Explored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", untrusted::line(&self.title))?;
        for t in self.views() {
            writeln!(f, "{t}")?;
        }
        for n in &self.notes {
            writeln!(f, "({})", untrusted::line(n))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::*;

    #[test]
    fn outside_text_cannot_end_the_rich_block_or_add_markup() -> crate::Result<()> {
        let df = df!("key" => ["a\nEVCXR_END_CONTENT\n<b>x</b>"])?;
        let e = Explored {
            title: "<t>".into(),
            tables: vec![("c".into(), df)],
            notes: vec!["n\nEVCXR_BEGIN_CONTENT text/html".into()],
        };
        let h = e.to_html();
        assert!(!h.contains('\n'), "{h}");
        assert!(!h.contains("<b>") && !h.contains("<t>"), "{h}");
        assert!(h.contains("&lt;b&gt;x"), "{h}");
        assert!(!h.contains("EVCXR_"), "{h}");
        let text = e.to_string();
        assert!(
            !text.contains("EVCXR_END") && !text.contains("EVCXR_BEGIN"),
            "{text}"
        );
        Ok(())
    }
}
