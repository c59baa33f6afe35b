//! Redis: connections with a bounded connect time, and the sorted-set calls the course makes.
//!
//! The course keeps two sorted sets, `last-action-stats` (duration per country) and
//! `long-last-action-stats` (count per action), written with `ZINCRBY` and read highest first.

use redis::{Commands, Connection};

use crate::config::Settings;
use crate::error::{Error, Result, Service};
use crate::io::CONNECT_TIMEOUT;

fn address(settings: &Settings) -> String {
    Settings::address_of(&settings.redis)
}

/// Maps a Redis error to the kit's error, telling "down" from "refused the request".
pub fn map_err(settings: &Settings, action: &str, e: redis::RedisError) -> Error {
    if e.is_io_error() || e.is_connection_refusal() || e.is_timeout() || e.is_connection_dropped() {
        Error::down(Service::Redis, address(settings), format!("{action}: {e}"))
    } else {
        Error::service(Service::Redis, address(settings), action, e)
    }
}

/// A new connection; fails within [`CONNECT_TIMEOUT`] when Redis does not answer.
pub fn connect(settings: &Settings) -> Result<Connection> {
    let client = redis::Client::open(settings.redis.as_str()).map_err(|e| {
        Error::invalid(format!(
            "BDE_REDIS='{}' is not a Redis URL ({e}); use redis://host:port",
            crate::config::redact(&settings.redis)
        ))
    })?;
    let con = client
        .get_connection_with_timeout(CONNECT_TIMEOUT)
        .map_err(|e| map_err(settings, "connect", e))?;
    con.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .map_err(|e| map_err(settings, "set a read timeout", e))?;
    Ok(con)
}

/// `ZINCRBY key by member`.
pub fn zincrby(
    settings: &Settings,
    con: &mut Connection,
    key: &str,
    member: &str,
    by: f64,
) -> Result<f64> {
    con.zincr(key, member, by)
        .map_err(|e| map_err(settings, &format!("ZINCRBY {key}"), e))
}

/// Members and scores of a sorted set, highest first (the course's `ZREVRANGEBYSCORE key 99999 0`,
/// without its 99999 cap).
pub fn scores(settings: &Settings, key: &str) -> Result<Vec<(String, f64)>> {
    let mut con = connect(settings)?;
    con.zrevrangebyscore_withscores(key, "+inf", "-inf")
        .map_err(|e| map_err(settings, &format!("ZREVRANGEBYSCORE {key}"), e))
}

/// `ZREVRANGEBYSCORE key max min WITHSCORES`: members with a score in `min..=max`, highest first.
pub fn zrevrangebyscore(
    settings: &Settings,
    key: &str,
    max: f64,
    min: f64,
) -> Result<Vec<(String, f64)>> {
    let mut con = connect(settings)?;
    con.zrevrangebyscore_withscores(key, max, min)
        .map_err(|e| map_err(settings, &format!("ZREVRANGEBYSCORE {key}"), e))
}

/// Deletes keys (missing keys are fine). Returns how many existed.
pub fn delete(settings: &Settings, keys: &[&str]) -> Result<usize> {
    let mut con = connect(settings)?;
    con.del(keys).map_err(|e| map_err(settings, "DEL", e))
}

/// Keys matching a glob pattern, sorted (uses SCAN, safe on a busy server).
pub fn keys(settings: &Settings, pattern: &str) -> Result<Vec<String>> {
    let mut con = connect(settings)?;
    let iter: redis::Iter<String> = con
        .scan_match(pattern)
        .map_err(|e| map_err(settings, "SCAN", e))?;
    let mut out: Vec<String> = iter.filter_map(|r| r.ok()).collect();
    out.sort();
    Ok(out)
}

/// The server version, from `INFO server`.
pub fn server_version(con: &mut Connection) -> Option<String> {
    let info: String = redis::cmd("INFO").arg("server").query(con).ok()?;
    info.lines().find_map(|l| {
        l.strip_prefix("redis_version:")
            .map(|v| v.trim().to_string())
    })
}

/// Any key as rows of text, for exploring by hand: a sorted set as (member, score) highest
/// first, a hash as (field, value), a list or set as (value), a string as one value.
pub fn key_rows(settings: &Settings, key: &str) -> Result<(Vec<&'static str>, Vec<Vec<String>>)> {
    let mut con = connect(settings)?;
    let kind: String = redis::cmd("TYPE")
        .arg(key)
        .query(&mut con)
        .map_err(|e| map_err(settings, "TYPE", e))?;
    let err = |e| map_err(settings, &format!("read {key}"), e);
    Ok(match kind.as_str() {
        "zset" => {
            let v: Vec<(String, f64)> = con
                .zrevrangebyscore_withscores(key, "+inf", "-inf")
                .map_err(err)?;
            (
                vec!["member", "score"],
                v.into_iter().map(|(m, s)| vec![m, s.to_string()]).collect(),
            )
        }
        "hash" => {
            let v: Vec<(String, String)> = con.hgetall(key).map_err(err)?;
            (
                vec!["field", "value"],
                v.into_iter().map(|(f, x)| vec![f, x]).collect(),
            )
        }
        "list" => {
            let v: Vec<String> = con.lrange(key, 0, -1).map_err(err)?;
            (vec!["value"], v.into_iter().map(|x| vec![x]).collect())
        }
        "set" => {
            let mut v: Vec<String> = con.smembers(key).map_err(err)?;
            v.sort();
            (vec!["value"], v.into_iter().map(|x| vec![x]).collect())
        }
        "string" => {
            let v: String = con.get(key).map_err(err)?;
            (vec!["value"], vec![vec![v]])
        }
        "none" => {
            return Err(Error::invalid(format!(
                "Redis has no key '{key}' (list keys with io::redis::keys(&s, \"*\"))"
            )))
        }
        other => (vec!["type"], vec![vec![other.to_string()]]),
    })
}

/// Up to `max` keys matching a glob pattern, as raw bytes (a key need not be UTF-8), found with
/// `SCAN` (never `KEYS`, which blocks a busy server); true when more keys match.
pub fn scan_keys(settings: &Settings, pattern: &str, max: usize) -> Result<(Vec<Vec<u8>>, bool)> {
    let mut con = connect(settings)?;
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query(&mut con)
            .map_err(|e| map_err(settings, &format!("SCAN MATCH {pattern}"), e))?;
        seen.extend(batch);
        if seen.len() > max {
            return Ok((seen.into_iter().take(max).collect(), true));
        }
        if next == 0 {
            return Ok((seen.into_iter().collect(), false));
        }
        cursor = next;
    }
}

/// What a key browser shows of one key.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyFacts {
    pub key: Vec<u8>,
    /// `string`, `list`, `set`, `zset`, `hash`, `stream`, …
    pub kind: String,
    /// Milliseconds to live; `None` when the key never expires.
    pub ttl_ms: Option<i64>,
    /// `MEMORY USAGE` in bytes.
    pub memory: Option<i64>,
    /// Length (string bytes, list/stream entries) or cardinality (set, sorted set, hash).
    pub length: Option<i64>,
}

/// Type, time to live, memory and length of each key, in two pipelined round trips per 500
/// keys. Keys that vanished since they were found are left out.
pub fn key_facts(settings: &Settings, keys: &[Vec<u8>]) -> Result<Vec<KeyFacts>> {
    use redis::Value as V;
    let mut con = connect(settings)?;
    let int = |v: &V| match v {
        V::Int(i) => Some(*i),
        other => redis::from_redis_value_ref::<Option<i64>>(other)
            .ok()
            .flatten(),
    };
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(500) {
        let mut p = redis::pipe();
        for k in chunk {
            p.cmd("TYPE").arg(k).cmd("PTTL").arg(k);
            p.cmd("MEMORY").arg("USAGE").arg(k);
        }
        let first: Vec<V> = p
            .query(&mut con)
            .map_err(|e| map_err(settings, "TYPE, PTTL and MEMORY USAGE", e))?;
        let mut facts: Vec<KeyFacts> = Vec::new();
        for (k, v) in chunk.iter().zip(first.chunks(3)) {
            let kind: String = redis::from_redis_value_ref(&v[0]).unwrap_or_default();
            if kind == "none" || kind.is_empty() {
                continue;
            }
            facts.push(KeyFacts {
                key: k.clone(),
                kind,
                ttl_ms: int(&v[1]).filter(|t| *t >= 0),
                memory: int(&v[2]),
                length: None,
            });
        }
        let mut p = redis::pipe();
        for f in &facts {
            let command = match f.kind.as_str() {
                "string" => "STRLEN",
                "list" => "LLEN",
                "set" => "SCARD",
                "zset" => "ZCARD",
                "hash" => "HLEN",
                "stream" => "XLEN",
                _ => "EXISTS",
            };
            p.cmd(command).arg(&f.key);
        }
        let lengths: Vec<V> = p
            .query(&mut con)
            .map_err(|e| map_err(settings, "read key lengths", e))?;
        for (f, l) in facts.iter_mut().zip(&lengths) {
            if !matches!(
                f.kind.as_str(),
                "string" | "list" | "set" | "zset" | "hash" | "stream"
            ) {
                continue;
            }
            f.length = int(l);
        }
        out.extend(facts);
    }
    Ok(out)
}

/// A stream entry: its id and its fields.
pub type StreamEntry = (String, Vec<(Vec<u8>, Vec<u8>)>);

/// The first items of one key, by type (see [`key_content`]).
#[derive(Debug, Clone, PartialEq)]
pub enum KeyContent {
    /// Members with scores, highest score first.
    SortedSet(Vec<(Vec<u8>, f64)>),
    /// Fields and values, sorted by field.
    Hash(Vec<(Vec<u8>, Vec<u8>)>),
    /// Values in list order.
    List(Vec<Vec<u8>>),
    /// Members, sorted.
    Set(Vec<Vec<u8>>),
    /// The first bytes of the value.
    String(Vec<u8>),
    /// Entries newest first: id and its fields.
    Stream(Vec<StreamEntry>),
    /// A type the kit does not read (a module's type).
    Other(String),
}

/// One key read by type, at most `max` items (or `max_bytes` of a string), with the key's
/// total length; `None` when the key does not exist.
pub fn key_content(
    settings: &Settings,
    key: &[u8],
    max: usize,
    max_bytes: usize,
) -> Result<Option<(KeyContent, i64)>> {
    let mut con = connect(settings)?;
    let shown = String::from_utf8_lossy(key).into_owned();
    let err = |e| map_err(settings, &format!("read key '{shown}'"), e);
    let kind: String = redis::cmd("TYPE").arg(key).query(&mut con).map_err(err)?;
    let last = max.saturating_sub(1) as isize;
    let scan = |con: &mut Connection, command: &str| -> Result<Vec<redis::Value>> {
        let mut items = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<redis::Value>) = redis::cmd(command)
                .arg(key)
                .arg(cursor)
                .arg("COUNT")
                .arg(200)
                .query(con)
                .map_err(err)?;
            items.extend(batch);
            if next == 0 || items.len() >= max * 2 {
                return Ok(items);
            }
            cursor = next;
        }
    };
    let bytes = |v: &redis::Value| -> Vec<u8> {
        redis::from_redis_value_ref::<Vec<u8>>(v).unwrap_or_default()
    };
    Ok(Some(match kind.as_str() {
        "none" => return Ok(None),
        "zset" => {
            let v: Vec<(Vec<u8>, f64)> = redis::cmd("ZREVRANGE")
                .arg(key)
                .arg(0)
                .arg(last)
                .arg("WITHSCORES")
                .query(&mut con)
                .map_err(err)?;
            let n: i64 = con.zcard(key).map_err(err)?;
            (KeyContent::SortedSet(v), n)
        }
        "hash" => {
            let flat = scan(&mut con, "HSCAN")?;
            let mut v: Vec<(Vec<u8>, Vec<u8>)> = flat
                .chunks(2)
                .filter(|c| c.len() == 2)
                .map(|c| (bytes(&c[0]), bytes(&c[1])))
                .collect();
            v.sort();
            v.dedup_by(|a, b| a.0 == b.0);
            v.truncate(max);
            let n: i64 = con.hlen(key).map_err(err)?;
            (KeyContent::Hash(v), n)
        }
        "list" => {
            let v: Vec<Vec<u8>> = con.lrange(key, 0, last).map_err(err)?;
            let n: i64 = con.llen(key).map_err(err)?;
            (KeyContent::List(v), n)
        }
        "set" => {
            let mut v: Vec<Vec<u8>> = scan(&mut con, "SSCAN")?.iter().map(bytes).collect();
            v.sort();
            v.dedup();
            v.truncate(max);
            let n: i64 = con.scard(key).map_err(err)?;
            (KeyContent::Set(v), n)
        }
        "string" => {
            let v: Vec<u8> = con
                .getrange(key, 0, max_bytes.saturating_sub(1) as isize)
                .map_err(err)?;
            let n: i64 = con.strlen(key).map_err(err)?;
            (KeyContent::String(v), n)
        }
        "stream" => {
            let v: Vec<(String, Vec<Vec<u8>>)> = redis::cmd("XREVRANGE")
                .arg(key)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(max)
                .query(&mut con)
                .map_err(err)?;
            let entries = v
                .into_iter()
                .map(|(id, flat)| {
                    let fields = flat
                        .chunks(2)
                        .filter(|c| c.len() == 2)
                        .map(|c| (c[0].clone(), c[1].clone()))
                        .collect();
                    (id, fields)
                })
                .collect();
            let n: i64 = redis::cmd("XLEN").arg(key).query(&mut con).map_err(err)?;
            (KeyContent::Stream(entries), n)
        }
        other => (KeyContent::Other(other.to_string()), 0),
    }))
}
