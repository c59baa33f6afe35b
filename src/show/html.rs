//! Small HTML helpers shared by tables, reports, charts' pages and the health view. Both build on
//! [`crate::untrusted`], so text escaped here is also safe inside evcxr's rich-output blocks.

use crate::untrusted;

/// Escapes one value for HTML element content and attribute values: markup characters as
/// entities, control characters (newlines included) and evcxr's protocol markers as
/// [`untrusted::line`] writes them.
pub fn escape(s: &str) -> String {
    markup(&untrusted::line(s))
}

/// Escapes text of several lines for a `<pre>`: like [`escape`], but line breaks and tabs stay.
pub fn escape_text(s: &str) -> String {
    markup(&untrusted::text(s))
}

fn markup(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">&</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
        );
    }

    #[test]
    fn a_value_stays_on_one_line_without_markers() {
        let h = escape("X\nEVCXR_END_CONTENT\n<img src=x>");
        assert_eq!(h, "X\\nEVCXR\\_END_CONTENT\\n&lt;img src=x&gt;");
    }

    #[test]
    fn text_keeps_lines_and_breaks_markers() {
        let h = escape_text("a\nEVCXR_END_CONTENT\n<b>");
        assert_eq!(h, "a\nEVCXR\\_END_CONTENT\n&lt;b&gt;");
    }
}
