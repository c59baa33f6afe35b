//! Redis by hand, as a key browser shows it: `redis_keys` (SCAN, never KEYS: type, time to
//! live, memory, length, grouped by `:`-namespace) and `redis_show` (one key by its type,
//! bounded).

use polars::prelude::*;

use crate::config::Settings;
use crate::error::{Error, Result, Service};
use crate::explore::{bytes_text, cut_note, human_bytes, Explored, Explorer};
use crate::io::redis::{key_content, key_facts, scan_keys, KeyContent};

/// Bytes of a string value [`Explorer::redis_show`] reads at most.
pub const MAX_STRING_BYTES: usize = 64 * 1024;

/// The namespace of a key: everything before its last `:` (`bde:applied:q1` → `bde:applied`),
/// empty for a key without one.
pub fn namespace(key: &str) -> &str {
    key.rsplit_once(':').map_or("", |(ns, _)| ns)
}

fn address(settings: &Settings) -> String {
    Settings::address_of(&settings.redis)
}

impl Explorer {
    /// The keys matching a glob `pattern` (`"*"`, `"bde:*"`), found with SCAN: namespace, key,
    /// type, TTL (seconds, null when the key never expires), memory, length or cardinality;
    /// sorted by namespace and key, with a second table of totals per namespace.
    pub fn redis_keys(&self, pattern: &str) -> Result<Explored> {
        let s = &self.settings;
        let (keys, cut) = scan_keys(s, pattern, self.limit)?;
        let facts = key_facts(s, &keys)?;
        let mut rows: Vec<(String, String, &crate::io::redis::KeyFacts)> = facts
            .iter()
            .map(|f| {
                let k = bytes_text(&f.key);
                (namespace(&k).to_string(), k, f)
            })
            .collect();
        rows.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        let frame = df!(
            "namespace" => rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
            "key" => rows.iter().map(|r| r.1.clone()).collect::<Vec<_>>(),
            "type" => rows.iter().map(|r| r.2.kind.clone()).collect::<Vec<_>>(),
            "ttl_s" => rows.iter().map(|r| r.2.ttl_ms.map(|t| (t + 999) / 1000)).collect::<Vec<_>>(),
            "memory_bytes" => rows.iter().map(|r| r.2.memory).collect::<Vec<_>>(),
            "length" => rows.iter().map(|r| r.2.length).collect::<Vec<_>>(),
        )?;
        let mut spaces: Vec<(String, i64, i64, Vec<String>)> = Vec::new();
        for (ns, _, f) in &rows {
            if spaces.last().is_none_or(|l| &l.0 != ns) {
                spaces.push((ns.clone(), 0, 0, Vec::new()));
            }
            if let Some(l) = spaces.last_mut() {
                l.1 += 1;
                l.2 += f.memory.unwrap_or(0);
                if !l.3.contains(&f.kind) {
                    l.3.push(f.kind.clone());
                }
            }
        }
        let totals = df!(
            "namespace" => spaces.iter().map(|n| n.0.clone()).collect::<Vec<_>>(),
            "keys" => spaces.iter().map(|n| n.1).collect::<Vec<_>>(),
            "memory" => spaces.iter().map(|n| human_bytes(n.2)).collect::<Vec<_>>(),
            "types" => spaces.iter().map(|n| n.3.join(", ")).collect::<Vec<_>>(),
        )?;
        let mut out = Explored::new(
            format!("Redis {}: keys matching {pattern}", address(s)),
            "keys",
            frame,
        )
        .and_table("namespaces", totals);
        if cut {
            out = out.note(cut_note(facts.len(), "more", "keys", self.limit));
        }
        Ok(out)
    }

    /// One key by its type, at most [`Explorer::limit`] items: a sorted set's members highest
    /// score first (with the total of the scores), a hash's fields, a list in order, a set's
    /// members sorted, a string's value (at most [`MAX_STRING_BYTES`]), a stream's newest
    /// entries.
    pub fn redis_show(&self, key: &str) -> Result<Explored> {
        let s = &self.settings;
        let limit = self.limit;
        let Some((content, total)) = key_content(s, key.as_bytes(), limit, MAX_STRING_BYTES)?
        else {
            return Err(Error::service(
                Service::Redis,
                address(s),
                format!("read key '{key}'"),
                "no such key: list keys with Explorer::redis_keys(\"*\")",
            ));
        };
        let title = format!("Redis {}: {key}", address(s));
        let texts = |v: &[Vec<u8>]| v.iter().map(|b| bytes_text(b)).collect::<Vec<_>>();
        let (kind, shown, out) = match content {
            KeyContent::SortedSet(items) => {
                let sum: f64 = items.iter().map(|(_, sc)| sc).sum();
                let n = items.len();
                let frame = df!(
                    "rank" => (1..=n as i64).collect::<Vec<_>>(),
                    "member" => items.iter().map(|(m, _)| bytes_text(m)).collect::<Vec<_>>(),
                    "score" => items.iter().map(|(_, sc)| *sc).collect::<Vec<_>>(),
                )?;
                let e = Explored::new(title, "sorted set, highest score first", frame);
                let e = if n as i64 == total {
                    e.note(format!("total of the scores: {sum}"))
                } else {
                    e.note(format!("total of the scores shown: {sum}"))
                };
                ("members", n, e)
            }
            KeyContent::Hash(items) => {
                let n = items.len();
                let frame = df!(
                    "field" => items.iter().map(|(f, _)| bytes_text(f)).collect::<Vec<_>>(),
                    "value" => items.iter().map(|(_, v)| bytes_text(v)).collect::<Vec<_>>(),
                )?;
                ("fields", n, Explored::new(title, "hash, by field", frame))
            }
            KeyContent::List(items) => {
                let n = items.len();
                let frame = df!(
                    "index" => (0..n as i64).collect::<Vec<_>>(),
                    "value" => texts(&items),
                )?;
                ("values", n, Explored::new(title, "list, in order", frame))
            }
            KeyContent::Set(items) => {
                let n = items.len();
                let frame = df!("member" => texts(&items))?;
                ("members", n, Explored::new(title, "set, sorted", frame))
            }
            KeyContent::String(value) => {
                let cut = (value.len() as i64) < total;
                let frame = df!("value" => [bytes_text(&value)], "bytes" => [total])?;
                let e = Explored::new(title, "string", frame);
                let e = if cut {
                    e.note(format!(
                        "showing the first {} of {total} bytes",
                        value.len()
                    ))
                } else {
                    e
                };
                return Ok(e);
            }
            KeyContent::Stream(entries) => {
                let n = entries.len();
                let frame = df!(
                    "id" => entries.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(),
                    "fields" => entries
                        .iter()
                        .map(|(_, f)| {
                            f.iter()
                                .map(|(k, v)| format!("{}={}", bytes_text(k), bytes_text(v)))
                                .collect::<Vec<_>>()
                                .join(", ")
                        })
                        .collect::<Vec<_>>(),
                )?;
                (
                    "entries",
                    n,
                    Explored::new(title, "stream, newest first", frame),
                )
            }
            KeyContent::Other(kind) => {
                let frame = df!("type" => [kind])?;
                return Ok(Explored::new(title, "a type the kit does not read", frame));
            }
        };
        Ok(if (shown as i64) < total {
            out.note(cut_note(shown, total, kind, limit))
        } else {
            out
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_what_comes_before_the_last_colon() {
        assert_eq!(namespace("bde:applied:q1"), "bde:applied");
        assert_eq!(namespace("last-action-stats"), "");
        assert_eq!(namespace(":x"), "");
        assert_eq!(namespace(""), "");
    }
}
