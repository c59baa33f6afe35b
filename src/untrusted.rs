//! Text from outside (Kafka values, Redis members, MariaDB cells, error messages that quote them)
//! made safe to print or render: the one place every layer calls before such text reaches stdout,
//! HTML or SVG. It sits at the bottom of the crate so `io`, `batch`, `stream`, `course` and `show`
//! may all use it.
//!
//! Two things can go wrong with outside text in a notebook:
//! - evcxr reads the kernel's stdout line by line as a protocol: a line that contains
//!   `EVCXR_BEGIN_CONTENT <mime>` opens a rich block (trusted HTML in the Jupyter origin) that only
//!   a line `EVCXR_END_CONTENT` closes, and a few other `EVCXR_…` lines steer the kernel
//!   (`EVCXR_EXECUTION_COMPLETE`, `EVCXR_INPUT_REQUEST`, …). Every `EVCXR_` in outside text is
//!   printed as `EVCXR\_`, so no outside text can ever form one of those lines.
//! - control characters: a newline in a value starts a line of its own (where it can carry a
//!   marker, or forge a section of a live block), a carriage return overwrites what was printed,
//!   `ESC` starts a terminal sequence, and most C0 characters make an SVG invalid XML. They are
//!   printed the way Rust writes them in a string literal: `\n`, `\r`, `\t`, `\u{1b}`; so are
//!   Unicode's line and paragraph separators and the bidirectional overrides that make text read
//!   differently from what it is.
//!
//! [`line`] is for one value (everything above, newlines included); [`text`] is for a block that
//! is meant to have several lines (it keeps `\n` and `\t`, escapes the rest). Backslashes are left
//! as they are: the result is for people to read, not to be parsed back.
//! [`crate::show::html::escape`] builds on [`line`] for HTML and SVG.

use std::borrow::Cow;

/// The prefix every evcxr protocol line starts with, and what it is printed as.
const MARKER: &str = "EVCXR_";
const MARKER_NEUTRAL: &str = "EVCXR\\_";

/// One outside value as it may be printed or rendered: control characters (newlines included)
/// written as escapes, evcxr's protocol markers broken. Borrows when nothing needs changing.
///
/// ```
/// use bde_kit::untrusted::line;
/// assert_eq!(line("USA,Order,3"), "USA,Order,3");
/// assert_eq!(
///     line("X\nEVCXR_END_CONTENT"),
///     "X\\nEVCXR\\_END_CONTENT"
/// );
/// ```
pub fn line(s: &str) -> Cow<'_, str> {
    neutralise(s, false)
}

/// Outside text meant to span several lines (a printed block): like [`line`], but `\n` and `\t`
/// stay as they are. Every line of the result is safe to print.
pub fn text(s: &str) -> Cow<'_, str> {
    neutralise(s, true)
}

/// Whether `c` is printed as an escape (in [`text`], `\n` and `\t` are not).
fn needs_escape(c: char, keep_lines: bool) -> bool {
    if keep_lines && (c == '\n' || c == '\t') {
        return false;
    }
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

fn neutralise(s: &str, keep_lines: bool) -> Cow<'_, str> {
    let has_control = s.chars().any(|c| needs_escape(c, keep_lines));
    if !has_control && !s.contains(MARKER) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if !needs_escape(c, keep_lines) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    // Last, so that no escape above can complete a marker: the replacement puts a backslash
    // before every `_` that followed `EVCXR`, and adds no `EVCXR_` of its own.
    if out.contains(MARKER) {
        out = out.replace(MARKER, MARKER_NEUTRAL);
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether evcxr 0.22 could read a stdout line as protocol (eval_context.rs: a line that
    /// contains `EVCXR_BEGIN_CONTENT <mime>` opens a block; the other commands all begin `EVCXR_`).
    fn is_protocol(l: &str) -> bool {
        l.contains("EVCXR_")
    }

    const FORGED: &str =
        "X\nEVCXR_BEGIN_CONTENT text/html\n<img src=x onerror=alert(1)>\nEVCXR_END_CONTENT";

    #[test]
    fn plain_values_are_borrowed_unchanged() {
        for v in [
            "USA",
            "India,Order,2024-08-12 13:01:16,11",
            "Zürich ü 東京",
            "a\\nb",
            "",
        ] {
            assert!(matches!(line(v), Cow::Borrowed(_)), "{v}");
            assert!(matches!(text(v), Cow::Borrowed(_)), "{v}");
        }
    }

    #[test]
    fn a_forged_block_becomes_one_inert_line() {
        let l = line(FORGED);
        assert_eq!(
            l,
            "X\\nEVCXR\\_BEGIN_CONTENT text/html\\n<img src=x onerror=alert(1)>\\nEVCXR\\_END_CONTENT"
        );
        assert_eq!(l.lines().count(), 1);
        assert!(!is_protocol(&l));
    }

    #[test]
    fn text_keeps_its_lines_and_breaks_every_marker() {
        let raw = format!("a\tb\r\n{FORGED}\nEVCXR_EXECUTION_COMPLETE");
        let t = text(&raw);
        assert_eq!(t.lines().count(), 6, "{t}");
        assert!(t.lines().all(|l| !is_protocol(l)), "{t}");
        assert!(t.starts_with("a\tb\\r\nX\n"), "{t}");
    }

    #[test]
    fn every_control_character_and_line_separator_is_escaped() {
        let v = "a\u{0}b\u{1b}[31mc\u{7f}d\u{85}e\u{2028}f\u{202e}g";
        assert_eq!(
            line(v),
            "a\\u{0}b\\u{1b}[31mc\\u{7f}d\\u{85}e\\u{2028}f\\u{202e}g"
        );
        assert!(line(v).chars().all(|c| !needs_escape(c, false)));
    }

    #[test]
    fn escaping_is_idempotent_and_never_completes_a_marker() {
        for v in [
            FORGED,
            "EVCXR\n_BEGIN_CONTENT x",
            "EVCXR_EVCXR__",
            "EVCX\u{52}_",
        ] {
            let once = line(v).into_owned();
            assert_eq!(line(&once), once, "{v:?}");
            assert_eq!(text(&once), once, "{v:?}");
            assert!(!once.contains(MARKER), "{v:?} gave {once:?}");
        }
    }
}
