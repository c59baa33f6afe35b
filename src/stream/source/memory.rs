//! [`MemorySource`]: a source held in memory, for tests and for trying a query without a broker
//! (Spark's `MemoryStream`).
//!
//! A `MemorySource` is a handle: clones share the same partitions, so a cell (or a test) keeps
//! one clone to append records while a query reads another. Records are never removed; a
//! record's offset is its position in its partition, and the query's checkpoint stores those
//! positions as it does Kafka offsets, so a query restarted on the same source resumes where it
//! committed and a replayed batch re-reads the same records.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::stream::source::{Limits, Msg, Offsets, Source, SourceReader, Start};

type Partitions = Arc<Mutex<Vec<Vec<Vec<u8>>>>>;

/// Partitions of records in memory (values as bytes, decoded by the query's row type).
#[derive(Clone)]
pub struct MemorySource {
    name: String,
    parts: Partitions,
    start: Start,
    max_records: usize,
    max_value_bytes: usize,
}

impl std::fmt::Debug for MemorySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemorySource")
            .field("name", &self.name)
            .field("records", &self.len())
            .finish()
    }
}

fn locked(parts: &Partitions) -> MutexGuard<'_, Vec<Vec<Vec<u8>>>> {
    // a panic while appending leaves whole records only: the data stays usable
    parts.lock().unwrap_or_else(|e| e.into_inner())
}

impl MemorySource {
    /// An empty source named `name` (the "topic" in offsets and dead letters) with one partition,
    /// read from the earliest record.
    pub fn new(name: &str) -> MemorySource {
        MemorySource::with_partitions(name, 1)
    }

    /// An empty source with `n` partitions (at least one).
    pub fn with_partitions(name: &str, n: usize) -> MemorySource {
        MemorySource {
            name: name.to_string(),
            parts: Arc::new(Mutex::new(vec![Vec::new(); n.max(1)])),
            start: Start::Earliest,
            max_records: 10_000,
            max_value_bytes: 1 << 20,
        }
    }

    /// Starting position when the checkpoint has none: `Earliest` (default) or `Latest`
    /// (`Committed` reads as `Earliest`: memory has no consumer groups).
    pub fn starting(mut self, start: Start) -> MemorySource {
        self.start = start;
        self
    }

    /// At most `n` records per micro-batch.
    pub fn max_records(mut self, n: usize) -> MemorySource {
        self.max_records = n.max(1);
        self
    }

    /// Values larger than this are dead letters (default 1 MiB).
    pub fn max_value_bytes(mut self, n: usize) -> MemorySource {
        self.max_value_bytes = n;
        self
    }

    /// Appends a value to partition `partition % partitions`; returns its offset.
    pub fn push_to(&self, partition: usize, value: impl Into<Vec<u8>>) -> i64 {
        let mut parts = locked(&self.parts);
        let n = parts.len();
        let p = &mut parts[partition % n];
        p.push(value.into());
        p.len() as i64 - 1
    }

    /// Appends a value to partition 0.
    pub fn push(&self, value: impl Into<Vec<u8>>) -> i64 {
        self.push_to(0, value)
    }

    /// Appends a row as its JSON text to partition 0.
    pub fn push_json<T: Serialize>(&self, row: &T) -> Result<i64> {
        let v = serde_json::to_vec(row)
            .map_err(|e| Error::invalid(format!("row is not serializable as JSON: {e}")))?;
        Ok(self.push(v))
    }

    /// Records in all partitions.
    pub fn len(&self) -> usize {
        locked(&self.parts).iter().map(Vec::len).sum()
    }

    /// True when no record was pushed yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn ends(&self) -> Offsets {
        let parts = locked(&self.parts);
        let per: BTreeMap<i32, i64> = parts
            .iter()
            .enumerate()
            .map(|(p, v)| (p as i32, v.len() as i64))
            .collect();
        BTreeMap::from([(self.name.clone(), per)])
    }
}

impl Source for MemorySource {
    fn describe(&self) -> String {
        format!("memory source {}", self.name)
    }

    fn limits(&self) -> Limits {
        Limits {
            max_records: self.max_records,
            max_value_bytes: self.max_value_bytes,
            dead_letters: false,
        }
    }

    fn open(
        &self,
        _settings: &Settings,
        query: &str,
        checkpoint: &Offsets,
    ) -> Result<Box<dyn SourceReader>> {
        let ends = self.ends();
        let mut next: Offsets = BTreeMap::new();
        let from_cp = checkpoint.get(&self.name);
        for (p, end) in &ends[&self.name] {
            let at = match (from_cp.and_then(|m| m.get(p)), self.start) {
                (Some(o), _) if *o > *end => {
                    return Err(super::kafka::recreated(query, &self.name, *p, *o, *end))
                }
                (Some(o), _) => *o,
                (None, Start::Latest) => *end,
                (None, _) => 0,
            };
            next.entry(self.name.clone()).or_default().insert(*p, at);
        }
        Ok(Box::new(MemoryReader {
            source: self.clone(),
            next,
        }))
    }
}

struct MemoryReader {
    source: MemorySource,
    next: Offsets,
}

impl SourceReader for MemoryReader {
    fn position(&self) -> &Offsets {
        &self.next
    }

    fn end_offsets(&mut self) -> Result<Offsets> {
        Ok(self.source.ends())
    }

    fn read(
        &mut self,
        targets: &Offsets,
        max: usize,
        _wait: Duration,
        exact: bool,
    ) -> Result<(Vec<Msg>, Offsets)> {
        let parts = locked(&self.source.parts);
        let name = &self.source.name;
        let mut pos = self.next.clone();
        let mut out = Vec::new();
        let topic: Arc<str> = Arc::from(name.as_str());
        for (p, at) in pos.entry(name.clone()).or_default().iter_mut() {
            let target = targets
                .get(name)
                .and_then(|m| m.get(p))
                .copied()
                .unwrap_or(*at);
            let records = parts.get(*p as usize).map_or(&[][..], |v| &v[..]);
            if exact && (records.len() as i64) < target {
                return Err(Error::invalid(format!(
                    "memory source {name}[{p}] holds {} records, the batch being replayed needs {target}: \
                     a query restarts on the same MemorySource value (a new one is empty)",
                    records.len()
                )));
            }
            while *at < target && (exact || out.len() < max) {
                let Some(v) = records.get(*at as usize) else {
                    break;
                };
                out.push(Msg {
                    topic: topic.clone(),
                    partition: *p,
                    offset: *at,
                    key: None,
                    value: Some(v.clone()),
                });
                *at += 1;
            }
        }
        Ok((out, pos))
    }

    fn commit(&mut self, end: &Offsets) {
        self.next = end.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ranges_and_replays_them_exactly() {
        let src = MemorySource::with_partitions("m", 2);
        for i in 0..5 {
            src.push_to(i, format!("v{i}"));
        }
        let settings = Settings::from_env();
        let mut r = src.open(&settings, "q", &Offsets::new()).expect("open");
        let ends = r.end_offsets().expect("ends");
        assert_eq!(ends["m"], BTreeMap::from([(0, 3), (1, 2)]));
        let (msgs, end) = r.read(&ends, 2, Duration::ZERO, false).expect("read");
        assert_eq!(msgs.len(), 2, "at most max records");
        let values: Vec<_> = msgs.iter().map(|m| m.value.clone()).collect();
        // a replay of the same range from the same start gives the same records
        let mut again = src.open(&settings, "q", &Offsets::new()).expect("open");
        let (replayed, _) = again.read(&end, 0, Duration::ZERO, true).expect("replay");
        assert_eq!(
            replayed.iter().map(|m| m.value.clone()).collect::<Vec<_>>(),
            values
        );
        r.commit(&end);
        let (rest, end) = r.read(&ends, 10, Duration::ZERO, false).expect("read");
        assert_eq!(rest.len(), 3);
        assert_eq!(end, ends);
        // a checkpoint beyond the end (a new, empty source) is refused
        let empty = MemorySource::new("m");
        assert!(empty.open(&settings, "q", &ends).is_err());
    }
}
