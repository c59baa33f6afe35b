//! Redis sorted-set sink: `ZINCRBY key by member` per row, exactly once per batch.
//!
//! A batch's increments are summed per member, then applied by ONE Lua script (`EVALSHA`, loaded
//! on first use), which Redis runs atomically:
//! 1. the marker key `<key>:applied:<query>:<sink>` holds the last applied batch id: a batch at
//!    or below it is skipped (a replay changes nothing twice);
//! 2. every check comes before the first write: the key must be a sorted set (or absent), every
//!    amount a finite number, and no member's score may become NaN;
//! 3. then the `ZINCRBY`s and the marker `SET`.
//!
//! A failed check returns an error and changes nothing, so the increments and the marker change
//! together or not at all. (`MULTI/EXEC` could not promise this: a `ZINCRBY` refused inside
//! `EXEC` with WRONGTYPE or a NaN does not stop the `SET` of the marker, and the batch was lost.)
//! A non-finite amount is a row problem: [`Sink::check`] names those rows, the engine sends them to
//! the dead-letter topic. A key of another type is not: the query fails with an error naming the
//! key and the fix, and applies the batch once the key is fixed.

use std::borrow::Cow;
use std::collections::BTreeMap;

use redis::Connection;

use crate::config::Settings;
use crate::error::{Error, Result, Service};
use crate::io::redis as rio;
use crate::stream::crashpoint;
use crate::stream::sink::{BatchInfo, Sink};

/// KEYS: sorted set, marker. ARGV: batch id, then member, amount pairs.
/// Returns the number of members changed, 0 for a batch applied before, or an error reply
/// `BDE_WRONGTYPE <type>` / `BDE_BADAMOUNT <member>` / `BDE_NAN <member>` without any effect.
const APPLY_BATCH: &str = r"
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind ~= 'none' and kind ~= 'zset' then
  return redis.error_reply('BDE_WRONGTYPE ' .. kind)
end
local last = redis.call('GET', KEYS[2])
if last and tonumber(last) and tonumber(last) >= tonumber(ARGV[1]) then
  return 0
end
for i = 2, #ARGV, 2 do
  local by = tonumber(ARGV[i + 1])
  if by == nil or by ~= by or by == math.huge or by == -math.huge then
    return redis.error_reply('BDE_BADAMOUNT ' .. ARGV[i])
  end
  local score = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[i]) or '0')
  local sum = score + by
  if sum ~= sum then
    return redis.error_reply('BDE_NAN ' .. ARGV[i])
  end
end
for i = 2, #ARGV, 2 do
  redis.call('ZINCRBY', KEYS[1], ARGV[i + 1], ARGV[i])
end
redis.call('SET', KEYS[2], ARGV[1])
return (#ARGV - 1) / 2
";

/// A row's member: borrowed from the row where the member function allows it (no copy per row).
type MemberFn<T> = Box<dyn for<'r> Fn(&'r T) -> Cow<'r, str> + Send + Sync>;

/// `ZINCRBY key by(row) member(row)` for every row.
pub struct RedisZIncr<T> {
    key: String,
    name: String,
    member: MemberFn<T>,
    by: Box<dyn Fn(&T) -> f64 + Send + Sync>,
    con: Option<Connection>,
    marker: String,
    /// SHA1 of the loaded script (`SCRIPT LOAD` answers it; loaded again after NOSCRIPT).
    sha: Option<String>,
}

impl<T> RedisZIncr<T> {
    /// A sink incrementing sorted set `key`.
    pub fn new(
        key: &str,
        member: impl Fn(&T) -> String + Send + Sync + 'static,
        by: impl Fn(&T) -> f64 + Send + Sync + 'static,
    ) -> RedisZIncr<T> {
        Self::with_member(key, member_fn(move |r: &T| Cow::Owned(member(r))), by)
    }

    /// [`RedisZIncr::new`] with a member the row holds as text (`|v| v.country.as_str()`): the
    /// member is read in place, with no copy per row.
    pub fn new_str(
        key: &str,
        member: impl Fn(&T) -> &str + Send + Sync + 'static,
        by: impl Fn(&T) -> f64 + Send + Sync + 'static,
    ) -> RedisZIncr<T> {
        Self::with_member(key, member_fn(move |r: &T| Cow::Borrowed(member(r))), by)
    }

    fn with_member(
        key: &str,
        member: MemberFn<T>,
        by: impl Fn(&T) -> f64 + Send + Sync + 'static,
    ) -> RedisZIncr<T> {
        RedisZIncr {
            key: key.into(),
            name: format!("redis:{key}"),
            member,
            by: Box::new(by),
            con: None,
            marker: String::new(),
            sha: None,
        }
    }
    /// The marker key holding the last applied batch id.
    pub fn marker_key(key: &str, query: &str, sink: &str) -> String {
        format!("{key}:applied:{query}:{sink}")
    }
}

impl<T: Send> Sink<T> for RedisZIncr<T> {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn open(&mut self, query: &str, settings: &Settings) -> Result<()> {
        self.con = Some(rio::connect(settings)?);
        self.marker = Self::marker_key(&self.key, query, &self.name);
        Ok(())
    }

    fn check(&self, _batch: &BatchInfo, rows: &[T]) -> Vec<(usize, String)> {
        // member -> (sum of negative, sum of positive) amounts kept: whichever subset of them the
        // engine applies, the batch's sum stays between the two
        let mut sums: BTreeMap<Cow<str>, (f64, f64)> = BTreeMap::new();
        let mut refused = Vec::new();
        for (i, r) in rows.iter().enumerate() {
            let by = (self.by)(r);
            let member = (self.member)(r);
            if !by.is_finite() {
                refused.push((
                    i,
                    format!(
                        "{}: the amount for member '{}' is {by}, not a finite number",
                        self.name,
                        shorten(&member)
                    ),
                ));
                continue;
            }
            let (neg, pos) = sums.get(&*member).copied().unwrap_or((0.0, 0.0));
            let next = if by < 0.0 {
                (neg + by, pos)
            } else {
                (neg, pos + by)
            };
            if !next.0.is_finite() || !next.1.is_finite() {
                refused.push((i, format!("{}: adding {by} makes the batch's sum for member '{}' overflow a 64-bit float", self.name, shorten(&member))));
                continue;
            }
            match sums.get_mut(&*member) {
                Some(sum) => *sum = next,
                None => {
                    sums.insert(member, next);
                }
            }
        }
        refused
    }

    fn apply(&mut self, batch: &BatchInfo, rows: &[T], _plan: &serde_json::Value) -> Result<u64> {
        let mut sums: BTreeMap<Cow<str>, f64> = BTreeMap::new();
        for r in rows {
            let member = (self.member)(r);
            let by = (self.by)(r);
            match sums.get_mut(&*member) {
                Some(sum) => *sum += by,
                None => {
                    // 0.0 + by: the sum starts from zero as before (a -0.0 amount sums to 0.0)
                    sums.insert(member, 0.0 + by);
                }
            }
        }
        if sums.is_empty() {
            // a batch without rows for this sink still passes its crash point
            crashpoint::hit("redis-exec", batch.batch_id);
            return Ok(0);
        }
        if self.con.is_none() {
            self.con = Some(rio::connect(&batch.settings)?);
        }
        let s = &batch.settings;
        let Some(con) = self.con.as_mut() else {
            return Err(Error::Task("redis connection missing".into()));
        };
        let mut outcome = Err(redis::RedisError::from((
            redis::ErrorKind::Client,
            "script not run",
        )));
        for _attempt in 0..2 {
            let sha = match &self.sha {
                Some(sha) => sha.clone(),
                None => {
                    let loaded: redis::RedisResult<String> =
                        redis::cmd("SCRIPT").arg("LOAD").arg(APPLY_BATCH).query(con);
                    let sha = match loaded {
                        Ok(sha) => sha,
                        Err(e) => {
                            self.con = None; // reconnect on the next call
                            return Err(rio::map_err(s, "load the sink's Lua script", e));
                        }
                    };
                    self.sha = Some(sha.clone());
                    sha
                }
            };
            let mut call = redis::cmd("EVALSHA");
            call.arg(&sha)
                .arg(2)
                .arg(&self.key)
                .arg(&self.marker)
                .arg(batch.batch_id);
            for (m, by) in &sums {
                call.arg(m.as_ref()).arg(*by);
            }
            crashpoint::hit("redis-exec", batch.batch_id);
            outcome = call.query::<u64>(con);
            match &outcome {
                // the server lost its script cache (restart, SCRIPT FLUSH): load it again
                Err(e) if e.code() == Some("NOSCRIPT") => self.sha = None,
                _ => break,
            }
        }
        match outcome {
            Ok(n) => Ok(n),
            Err(e) if e.code().is_some_and(|c| c.starts_with("BDE_")) => Err(self.refusal(s, &e)),
            Err(e) => {
                self.con = None; // reconnect on the next call
                Err(rio::map_err(
                    s,
                    &format!(
                        "apply batch {} to {} (Lua script)",
                        batch.batch_id, self.key
                    ),
                    e,
                ))
            }
        }
    }
}

impl<T> RedisZIncr<T> {
    /// The error for a batch the script refused (nothing was changed).
    fn refusal(&self, s: &Settings, e: &redis::RedisError) -> Error {
        let addr = Settings::address_of(&s.redis);
        let rest = e.detail().unwrap_or_default().trim();
        let msg = match e.code().unwrap_or_default() {
            "BDE_WRONGTYPE" => format!(
                "key '{}' holds a {rest}, not a sorted set, so ZINCRBY cannot add to it; nothing of the batch was applied and it is not marked done. \
                 Fix: delete or rename that key (`DEL {}`) or give the sink another key, then start the query again: it applies the batch",
                self.key, self.key
            ),
            "BDE_NAN" => format!("the score of member '{rest}' in '{}' would become NaN; nothing of the batch was applied. Fix: correct that member's score (ZSCORE/ZADD), then start the query again", self.key),
            _ => format!("an amount for member '{rest}' is not a finite number; nothing of the batch was applied (such rows should have gone to the dead-letter topic)"),
        };
        Error::Service {
            service: Service::Redis,
            address: addr,
            action: format!("apply a batch to '{}'", self.key),
            detail: msg,
        }
    }
}

/// The member function as the sink keeps it (names the lifetime the member borrows).
fn member_fn<T, F>(f: F) -> MemberFn<T>
where
    F: for<'r> Fn(&'r T) -> Cow<'r, str> + Send + Sync + 'static,
{
    Box::new(f)
}

/// The first 64 characters of a member, for a reason text.
fn shorten(t: &str) -> String {
    let mut s: String = t.chars().take(64).collect();
    if s.len() < t.len() {
        s.push('…');
    }
    s
}
