//! [`Live`]: a bounded refresh loop for cells that watch something change.
//!
//! evcxr streams `println!` lines while a cell runs but cannot update an output in place, so a
//! live view prints one compact text block per refresh and stops after a number of refreshes or
//! a duration: the cell always returns, and its last expression can then be a rich
//! [`Report`](crate::show::Report).

use std::time::{Duration, Instant};

use crate::error::Result;

/// How often and how long to refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Live {
    every: Duration,
    max_refreshes: Option<usize>,
    max_duration: Option<Duration>,
}

impl Live {
    /// Refresh every `every` (the course uses 5 s); by default 12 refreshes.
    pub fn every(every: Duration) -> Live {
        Live { every, max_refreshes: Some(12), max_duration: None }
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
    /// between refreshes. Returns the number of refreshes made. Stops early on an error.
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
        let mut i = 0;
        loop {
            if self.max_refreshes.is_some_and(|n| i >= n) || self.max_duration.is_some_and(|d| start.elapsed() >= d) {
                return Ok(i);
            }
            let block = refresh(i)?;
            println!("\n{}\n{block}", "*".repeat(50));
            i += 1;
            if done() {
                return Ok(i);
            }
            let done_next = self.max_refreshes.is_some_and(|n| i >= n) || self.max_duration.is_some_and(|d| start.elapsed() + self.every > d);
            if done_next {
                return Ok(i);
            }
            std::thread::sleep(self.every);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_when_done() {
        let mut calls = 0;
        let n = Live::every(Duration::from_millis(1)).refreshes(100).run_until(|i| Ok(format!("{i}")), || {
            calls += 1;
            calls >= 4
        });
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
