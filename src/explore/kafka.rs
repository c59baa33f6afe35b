//! Kafka by hand, as Kafka UI and `kcat` show it: `topics` (partitions, offsets, records, each
//! `.dlq` topic beside its source), `peek` (newest records with their headers), `lag` (every
//! query checkpoint of this machine behind its topics) and `groups` (consumer groups and their
//! committed offsets).
//!
//! `lag` reads checkpoints through [`crate::stream::checkpoint`]'s public API: the folders of
//! [`crate::Settings::checkpoint_dir`] (named by [`checkpoint::dir_for`]), [`Checkpoint::load`], the
//! checkpoint's `offsets`, `next_batch`, `pending` and `last_batch_time_ms`, and
//! [`checkpoint::is_alive`] with [`checkpoint::ALIVE_WITHIN`] for "running".

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use polars::prelude::*;

use crate::error::{Error, Result};
use crate::explore::{bytes_text, cut_note, Explored, Explorer};
use crate::io::kafka::{self, Record};
use crate::stream::checkpoint::{self, Checkpoint};

/// How long [`Explorer::peek`] waits for the records it asked for.
pub const PEEK_TIMEOUT: Duration = Duration::from_secs(15);

/// Characters of a record's value shown at most (the rest is cut, and said).
pub const MAX_VALUE_CHARS: usize = 2000;

/// The suffix of dead-letter topics (`<topic>.dlq`).
const DLQ: &str = ".dlq";

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SS.mmm` (UTC).
pub fn utc_millis(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
}

/// Topic names in browsing order: each `.dlq` topic right after its source.
pub fn browsing_order(mut names: Vec<String>) -> Vec<String> {
    names.sort_by(|a, b| {
        let base = |n: &String| n.strip_suffix(DLQ).unwrap_or(n).to_string();
        (base(a), a.ends_with(DLQ)).cmp(&(base(b), b.ends_with(DLQ)))
    });
    names
}

impl Explorer {
    /// Every topic: partitions, first and end offset of each partition, records (end − first,
    /// transaction markers included), and for a `.dlq` topic the topic it holds dead letters
    /// of, listed right after it.
    pub fn topics(&self) -> Result<Explored> {
        let s = &self.settings;
        let names = browsing_order(kafka::list_topics(s)?);
        let cut = names.len() > self.limit;
        let (mut topic, mut parts, mut offsets, mut records, mut dlq_of) =
            (vec![], vec![], vec![], vec![], vec![]);
        for name in names.into_iter().take(self.limit) {
            // a topic deleted since it was listed (another session's test topics) is left out
            let Ok(marks) = kafka::watermarks(s, &name) else {
                continue;
            };
            parts.push(marks.len() as i64);
            offsets.push(
                marks
                    .iter()
                    .map(|(p, lo, hi)| format!("p{p}: {lo}..{hi}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            );
            records.push(marks.iter().map(|(_, lo, hi)| hi - lo).sum::<i64>());
            dlq_of.push(name.strip_suffix(DLQ).map(str::to_string));
            topic.push(name);
        }
        let n = topic.len();
        let frame = df!(
            "topic" => topic,
            "partitions" => parts,
            "offsets (first..end)" => offsets,
            "records" => records,
            "dead letters of" => dlq_of,
        )?;
        let mut out = Explored::new(format!("Kafka {}: topics", s.kafka), "topics", frame)
            .note("records: end − first offset per partition (transaction markers count too)");
        if cut {
            out = out.note(cut_note(n, "more", "topics", self.limit));
        }
        Ok(out)
    }

    /// The newest `n` records of `topic` over all its partitions, newest first: partition,
    /// offset, timestamp, key, headers, value.
    pub fn peek(&self, topic: &str, n: usize) -> Result<Explored> {
        self.peek_records(topic, n, false)
    }

    /// The oldest `n` records of `topic` (from the beginning), oldest first.
    pub fn peek_from_beginning(&self, topic: &str, n: usize) -> Result<Explored> {
        self.peek_records(topic, n, true)
    }

    fn peek_records(&self, topic: &str, n: usize, oldest: bool) -> Result<Explored> {
        let s = &self.settings;
        let n = n.min(self.limit);
        let marks = kafka::watermarks(s, topic)?;
        let total: i64 = marks.iter().map(|(_, lo, hi)| hi - lo).sum();
        let want = n as i64;
        let ranges: Vec<(i32, i64, i64)> = marks
            .iter()
            .map(|&(p, lo, hi)| {
                if oldest {
                    (p, lo, hi.min(lo.saturating_add(want)))
                } else {
                    (p, lo.max(hi - want), hi)
                }
            })
            .collect();
        let mut recs = kafka::read_ranges(s, topic, &ranges, PEEK_TIMEOUT)?;
        let order = |r: &Record| (r.timestamp_ms.unwrap_or(i64::MIN), r.offset, r.partition);
        recs.sort_by_key(order);
        if !oldest {
            recs.reverse();
        }
        recs.truncate(n);
        let mut long_values = 0;
        let value = |r: &Record, long: &mut usize| {
            r.value.as_deref().map(|v| {
                let t = bytes_text(v);
                if t.chars().count() > MAX_VALUE_CHARS {
                    *long += 1;
                    format!("{}…", t.chars().take(MAX_VALUE_CHARS).collect::<String>())
                } else {
                    t
                }
            })
        };
        let values: Vec<Option<String>> = recs.iter().map(|r| value(r, &mut long_values)).collect();
        let frame = df!(
            "partition" => recs.iter().map(|r| r.partition).collect::<Vec<_>>(),
            "offset" => recs.iter().map(|r| r.offset).collect::<Vec<_>>(),
            "timestamp" => recs.iter().map(|r| r.timestamp_ms.and_then(utc_millis)).collect::<Vec<_>>(),
            "key" => recs.iter().map(|r| r.key.as_deref().map(bytes_text)).collect::<Vec<_>>(),
            "headers" => recs
                .iter()
                .map(|r| {
                    r.headers
                        .iter()
                        .map(|(k, v)| match v {
                            Some(v) => format!("{k}={}", bytes_text(v)),
                            None => k.clone(),
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .collect::<Vec<_>>(),
            "value" => values,
        )?;
        let caption = if oldest {
            format!("oldest {} records, oldest first", frame.height())
        } else {
            format!("newest {} records, newest first", frame.height())
        };
        let mut out = Explored::new(format!("Kafka {}: {topic}", s.kafka), caption, frame)
            .note(format!("{total} records in {} partitions", marks.len()));
        if long_values > 0 {
            out = out.note(format!(
                "{long_values} values cut at {MAX_VALUE_CHARS} characters"
            ));
        }
        Ok(out)
    }

    /// Every query checkpoint under [`crate::Settings::checkpoint_dir`]: per topic and partition the
    /// checkpoint's offset, the topic's end offset, how far behind it is, the last batch's
    /// time, the next batch id, a batch cut but not committed, and whether the query runs.
    pub fn lag(&self) -> Result<Explored> {
        let s = &self.settings;
        let found = checkpoints(&s.checkpoint_dir)?;
        let mut ends: BTreeMap<String, Option<BTreeMap<i32, i64>>> = BTreeMap::new();
        let (mut query, mut topic, mut part, mut at, mut end, mut behind) =
            (vec![], vec![], vec![], vec![], vec![], vec![]);
        let (mut last, mut next, mut pending, mut running) = (vec![], vec![], vec![], vec![]);
        for (dir, cp) in &found {
            let alive = checkpoint::is_alive(dir, checkpoint::ALIVE_WITHIN);
            for (t, offsets) in &cp.offsets {
                let marks = ends.entry(t.clone()).or_insert_with(|| {
                    kafka::watermarks(s, t)
                        .ok()
                        .map(|m| m.into_iter().map(|(p, _, hi)| (p, hi)).collect())
                });
                for (p, o) in offsets {
                    let e = marks.as_ref().and_then(|m| m.get(p).copied());
                    query.push(cp.query.clone());
                    topic.push(t.clone());
                    part.push(*p);
                    at.push(*o);
                    end.push(e);
                    behind.push(e.map(|e| e - o));
                    last.push(
                        Some(cp.last_batch_time_ms)
                            .filter(|ms| *ms > 0)
                            .and_then(utc_millis),
                    );
                    next.push(cp.next_batch as i64);
                    pending.push(cp.pending.as_ref().map(|b| b.batch_id as i64));
                    running.push(alive);
                }
            }
        }
        let gone: Vec<String> = ends
            .iter()
            .filter(|(_, m)| m.is_none())
            .map(|(t, _)| t.clone())
            .collect();
        let frame = df!(
            "query" => query,
            "topic" => topic,
            "partition" => part,
            "checkpoint offset" => at,
            "end offset" => end,
            "behind" => behind,
            "last batch (UTC)" => last,
            "next batch" => next,
            "pending batch" => pending,
            "running" => running,
        )?;
        let mut out = Explored::new(
            format!(
                "Kafka {}: query checkpoints in {}",
                s.kafka,
                s.checkpoint_dir.display()
            ),
            "lag",
            frame,
        )
        .note(format!(
            "{} checkpoints; behind: end offset − checkpoint offset (transaction markers count \
             too); running: a heartbeat within {} s",
            found.len(),
            checkpoint::ALIVE_WITHIN.as_secs()
        ));
        if !gone.is_empty() {
            out = out.note(format!("topics gone from the broker: {}", gone.join(", ")));
        }
        Ok(out)
    }

    /// The broker's consumer groups (state, members) and, for each, the offsets it committed
    /// on every topic with how far behind the end they are.
    pub fn groups(&self) -> Result<Explored> {
        let s = &self.settings;
        let groups = kafka::groups(s)?;
        let cut = groups.len() > self.limit;
        let groups: Vec<_> = groups.into_iter().take(self.limit).collect();
        let frame = df!(
            "group" => groups.iter().map(|g| g.name.clone()).collect::<Vec<_>>(),
            "state" => groups.iter().map(|g| g.state.clone()).collect::<Vec<_>>(),
            "protocol" => groups.iter().map(|g| g.protocol_type.clone()).collect::<Vec<_>>(),
            "members" => groups.iter().map(|g| g.members as i64).collect::<Vec<_>>(),
        )?;
        let mut marks: Vec<(String, i32, i64)> = Vec::new();
        for t in kafka::list_topics(s)? {
            if let Ok(m) = kafka::watermarks(s, &t) {
                marks.extend(m.into_iter().map(|(p, _, hi)| (t.clone(), p, hi)));
            }
        }
        let all: Vec<(String, i32)> = marks.iter().map(|(t, p, _)| (t.clone(), *p)).collect();
        let (mut g, mut t, mut p, mut c, mut e, mut b) =
            (vec![], vec![], vec![], vec![], vec![], vec![]);
        for group in &groups {
            for (topic, partition, offset) in kafka::committed(s, &group.name, &all)? {
                let hi = marks
                    .iter()
                    .find(|(mt, mp, _)| *mt == topic && *mp == partition)
                    .map(|(_, _, hi)| *hi);
                g.push(group.name.clone());
                t.push(topic);
                p.push(partition);
                c.push(offset);
                e.push(hi);
                b.push(hi.map(|h| h - offset));
            }
        }
        let committed = df!(
            "group" => g,
            "topic" => t,
            "partition" => p,
            "committed offset" => c,
            "end offset" => e,
            "behind" => b,
        )?;
        let mut out = Explored::new(
            format!("Kafka {}: consumer groups", s.kafka),
            "groups",
            frame,
        )
        .and_table("committed offsets", committed);
        if cut {
            out = out.note(cut_note(self.limit, "more", "groups", self.limit));
        }
        Ok(out)
    }
}

/// The checkpoints under `root`, each with its folder, sorted by query name. A folder without
/// a checkpoint file (a query that never committed) is left out.
pub fn checkpoints(root: &Path) -> Result<Vec<(std::path::PathBuf, Checkpoint)>> {
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::file(root, e)),
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let dir = entry.path();
        if !dir.join("checkpoint.json").is_file() {
            continue;
        }
        // The query's name is in the file (a folder name may be sanitised, `a_b-<hash>`); the
        // checkpoint is then loaded by that name, which checks it belongs to the query.
        let file = dir.join("checkpoint.json");
        let bytes = std::fs::read(&file).map_err(|e| Error::file(&file, e))?;
        let named: Checkpoint = serde_json::from_slice(&bytes).map_err(|e| {
            Error::invalid(format!(
                "checkpoint {} is damaged ({e}); to start over, reset it: `stream::checkpoint::reset(root, \"<query>\")`",
                file.display()
            ))
        })?;
        if checkpoint::dir_for(root, &named.query) != dir {
            continue;
        }
        let cp = Checkpoint::load(&dir, &named.query)?;
        out.push((dir, cp));
    }
    out.sort_by(|a, b| a.1.query.cmp(&b.1.query));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letter_topics_follow_their_source() {
        let names = ["b", "a.dlq", "a", "b.dlq", "a.b"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            browsing_order(names),
            ["a", "a.dlq", "a.b", "b", "b.dlq"]
                .map(String::from)
                .to_vec()
        );
    }

    #[test]
    fn timestamps_read_in_utc() {
        assert_eq!(
            utc_millis(1_764_806_400_123).as_deref(),
            Some("2025-12-04 00:00:00.123")
        );
    }
}
