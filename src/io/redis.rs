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
