//! [`Live`]: a bounded refresh loop for cells that watch something change.
//!
//! evcxr streams `println!` lines while a cell runs but cannot update an output in place, so a
//! live view prints one compact text block per refresh and stops after a number of refreshes or
//! a duration: the cell always returns, and its last expression can then be a rich
//! [`Report`](crate::show::Report).
//!
//! A block is read as sections, each a title line underlined with dashes and its body (the
//! course's format, see [`section`]). A refresh prints only the sections whose body changed
//! since they were last printed (an empty body, such as "no new lines", counts as unchanged); a
//! refresh with nothing new prints one line "waiting for data…" per quiet stretch instead of
//! repeating the same block.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::error::Result;

/// How often and how long to refresh. Jupyter's ■ ends the loop within 100 ms of a sleep (or
/// after the refresh under way), with what it has: see [`crate::interrupt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Live {
    every: Duration,
    max_refreshes: Option<usize>,
    max_duration: Option<Duration>,
}

impl Live {
    /// Refresh every `every` (the course uses 5 s); by default 12 refreshes.
    pub fn every(every: Duration) -> Live {
        Live {
            every,
            max_refreshes: Some(12),
            max_duration: None,
        }
    }

    /// Stop after `n` refreshes.
    pub fn refreshes(mut self, n: usize) -> Live {
        self.max_refreshes = Some(n);
        self
    }

    /// Stop once `d` has passed (checked before each refresh).
    pub fn for_duration(mut self, d: Duration) -> Live {
        self.max_duration = Some(d);
        self.max_refreshes = None;
        self
    }

    /// Calls `refresh(i)` for i = 0, 1, … printing each returned block as it comes; sleeps
    /// between refreshes. A block's lines go through [`crate::untrusted::text`]; a caller that
    /// puts an outside value in a block writes it with [`crate::untrusted::line`], so that a
    /// newline in the value cannot start a section of its own. Returns the number of refreshes made. Stops early on an error.
    pub fn run<F>(self, refresh: F) -> Result<usize>
    where
        F: FnMut(usize) -> Result<String>,
    {
        self.run_until(refresh, || false)
    }

    /// Like [`Live::run`], and also stops as soon as `done()` is true after a refresh.
    pub fn run_until<F, D>(self, mut refresh: F, mut done: D) -> Result<usize>
    where
        F: FnMut(usize) -> Result<String>,
        D: FnMut() -> bool,
    {
        let start = Instant::now();
        let mut changes = Changes::default();
        let mut i = 0;
        loop {
            if self.max_refreshes.is_some_and(|n| i >= n)
                || self.max_duration.is_some_and(|d| start.elapsed() >= d)
                || crate::interrupt::interrupted()
            {
                return Ok(i);
            }
            let block = refresh(i)?;
            if let Some(out) = changes.next(&crate::untrusted::text(&block)) {
                println!("{out}");
            }
            i += 1;
            if done() {
                return Ok(i);
            }
            let done_next = self.max_refreshes.is_some_and(|n| i >= n)
                || self
                    .max_duration
                    .is_some_and(|d| start.elapsed() + self.every > d);
            if done_next {
                return Ok(i);
            }
            if crate::interrupt::sleep(self.every) {
                return Ok(i);
            }
        }
    }
}

/// A section title underlined with dashes, as the course prints it; a block is sections.
pub fn section(title: &str) -> String {
    format!("{title}\n{}\n", "-".repeat(title.chars().count()))
}

/// The line printed once per quiet stretch.
pub const WAITING: &str = "waiting for data…";

/// What was printed so far, to print only what changed.
#[derive(Debug, Default)]
struct Changes {
    last: HashMap<String, String>,
    waiting: bool,
}

impl Changes {
    /// The text to print for a new block: the separator and the changed sections, the
    /// "waiting" line on the first quiet refresh, or nothing.
    fn next(&mut self, block: &str) -> Option<String> {
        let mut out = String::new();
        for (title, body) in sections(block) {
            let seen = self.last.get(&title).is_some_and(|b| *b == body);
            if body.trim().is_empty() || seen {
                continue;
            }
            if !title.is_empty() {
                out.push_str(&section(&title));
            }
            out.push_str(&body);
            if !body.ends_with('\n') {
                out.push('\n');
            }
            self.last.insert(title, body);
        }
        if !out.is_empty() {
            self.waiting = false;
            return Some(format!(
                "\n{}\n{}",
                "*".repeat(50),
                out.trim_end_matches('\n')
            ));
        }
        if self.waiting {
            return None;
        }
        self.waiting = true;
        Some(WAITING.to_string())
    }
}

/// Splits a block into (title, body) sections; text before the first title has an empty title.
fn sections(block: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = block.lines().collect();
    let is_rule = |title: &str, rule: &str| {
        !title.trim().is_empty()
            && !rule.is_empty()
            && rule.chars().all(|c| c == '-')
            && rule.chars().count() == title.chars().count()
    };
    let mut out: Vec<(String, String)> = vec![(String::new(), String::new())];
    let mut i = 0;
    while i < lines.len() {
        if i + 1 < lines.len() && is_rule(lines[i], lines[i + 1]) {
            out.push((lines[i].to_string(), String::new()));
            i += 2;
            continue;
        }
        if let Some((_, body)) = out.last_mut() {
            body.push_str(lines[i]);
            body.push('\n');
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(carts: &str, countries: &str) -> String {
        format!(
            "{}{carts}{}{countries}",
            section("Shopping Cart from Kafka"),
            section("Country Stats from Redis")
        )
    }

    #[test]
    fn quiet_refreshes_print_one_waiting_line() {
        let mut c = Changes::default();
        assert_eq!(c.next(&block("", "")).as_deref(), Some(WAITING));
        assert_eq!(
            c.next(&block("", "")),
            None,
            "a second empty block prints nothing"
        );
        assert_eq!(c.next(&block("", "")), None);
    }

    #[test]
    fn only_changed_sections_print() {
        let mut c = Changes::default();
        let first = c
            .next(&block("USA,ShoppingCart,1\n", "USA  =  3.0\n"))
            .expect("printed");
        assert!(
            first
                .contains("Shopping Cart from Kafka\n------------------------\nUSA,ShoppingCart,1")
                && first.contains("Country Stats from Redis\n"),
            "{first}"
        );
        let second = c.next(&block("", "USA  =  3.0\n"));
        assert_eq!(
            second.as_deref(),
            Some(WAITING),
            "same totals and no new line: nothing changed"
        );
        let third = c.next(&block("", "USA  =  5.0\n")).expect("printed");
        assert!(
            third.contains("USA  =  5.0") && !third.contains("Shopping Cart"),
            "{third}"
        );
    }

    #[test]
    fn a_block_without_sections_prints_when_it_changes() {
        let mut c = Changes::default();
        assert!(c.next("3 rows").is_some_and(|o| o.ends_with("3 rows")));
        assert_eq!(c.next("3 rows").as_deref(), Some(WAITING));
        assert!(c.next("4 rows").is_some_and(|o| o.ends_with("4 rows")));
    }

    #[test]
    fn stops_when_done() {
        let mut calls = 0;
        let n = Live::every(Duration::from_millis(1))
            .refreshes(100)
            .run_until(
                |i| Ok(format!("{i}")),
                || {
                    calls += 1;
                    calls >= 4
                },
            );
        assert_eq!(n.expect("runs"), 4);
    }

    #[test]
    fn stops_after_the_given_refreshes() {
        let mut seen = vec![];
        let n = Live::every(Duration::from_millis(1)).refreshes(3).run(|i| {
            seen.push(i);
            Ok(format!("refresh {i}"))
        });
        assert_eq!(n.expect("runs"), 3);
        assert_eq!(seen, vec![0, 1, 2]);
    }
}
