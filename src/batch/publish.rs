//! A batch write of rows to Kafka that publishes each row once, however often it runs and from
//! however many kernels at once:
//!
//! ```text
//! KafkaPublish::to(&settings, LONG_TOPIC).key("LAST_ACTION").value("LAST_ACTION")
//!     .once_per("ID", STATS_DB, LEDGER_TABLE)
//!     .publish(&rows)?
//! ```
//!
//! The ledger table (created on first use: `SOURCE`, `ROW_ID`, `RECORD_VALUE`, `STATE`, `RUN_ID`,
//! `RESERVED_AT`, `PUBLISHED_AT`) holds one row per ID of a source. With
//! [`KafkaPublish::source_table`] the source is that table as created (its name and creation
//! time), so a table dropped and created again (IDs from 1 again) is a new source whose rows are
//! published, not taken for "published before"; the header then carries `<ID>@<source>`.
//!
//! 1. **reserve** — the IDs are inserted as `reserved` under this run's id (`INSERT IGNORE` on the
//!    primary key: of two runs at once, each ID goes to one of them), committed before any send;
//! 2. **send** — each reserved row goes out with the header `bde-row-id: <ID>`, in chunks; before
//!    each chunk the run renews its lease and checks that it still holds every one of its rows
//!    (a run that stalled past its lease and was taken over stops there, with an error);
//! 3. **confirm** — once the broker acknowledged every record, the run's rows become `published`;
//!    a confirm that does not find every one of them is an error, never a silent success.
//!
//! A run that failed between 1 and 3 leaves `reserved` rows. After the lease (default two
//! minutes without a renewal; the run is then surely gone) the next run takes them over and reads
//! the topic's `bde-row-id` headers: IDs found there are confirmed without sending, the others are
//! sent. So a row is never published twice, and never lost. Reserved rows of a run still inside
//! its lease are left to it and reported. A value longer than the ledger's `RECORD_VALUE`
//! (255 characters) is refused before anything is reserved.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use mysql::prelude::Queryable;
use mysql::Value;
use polars::prelude::*;

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::io::mariadb::quote_ident;
use crate::io::{kafka, mariadb};

/// The header carrying a published row's ID.
pub const ID_HEADER: &str = "bde-row-id";
/// How long a run's reservations are its own after their last renewal.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(120);
/// Records sent between two renewals of the lease (one chunk is acknowledged well within it).
pub const SEND_CHUNK: usize = 500;
/// The longest value the ledger keeps (`RECORD_VALUE VARCHAR(255)`, in characters).
pub const MAX_RECORD_VALUE: usize = 255;

/// A publish of rows to a topic (see the module docs).
#[derive(Debug, Clone)]
pub struct KafkaPublish {
    topic: String,
    key: Option<String>,
    value: String,
    ledger: Option<Ledger>,
    lease: Duration,
    fail_after: Option<usize>,
    chunk: usize,
    pause: Option<Duration>,
    settings: Settings,
}

#[derive(Debug, Clone)]
struct Ledger {
    id: String,
    db: String,
    table: String,
    /// (database, table) the IDs come from.
    source: Option<(String, String)>,
}

/// What a publish did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Published {
    /// Rows given.
    pub selected: usize,
    /// Rows sent by this run.
    pub published: usize,
    /// Rows published by an earlier run.
    pub published_before: usize,
    /// Rows of a failed earlier run found in the topic and confirmed without sending.
    pub recovered: usize,
    /// Rows reserved by another run still inside its lease (it publishes them).
    pub in_progress_elsewhere: usize,
}

impl fmt::Display for Published {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} sent, {} published before, {} recovered, {} in progress elsewhere (of {})",
            self.published,
            self.published_before,
            self.recovered,
            self.in_progress_elsewhere,
            self.selected
        )
    }
}

impl KafkaPublish {
    /// A publish to `topic` on the Kafka of `settings` (its ledger on their MariaDB); the value
    /// column must be set ([`KafkaPublish::value`]).
    pub fn to(settings: &Settings, topic: &str) -> KafkaPublish {
        KafkaPublish {
            topic: topic.into(),
            key: None,
            value: String::new(),
            ledger: None,
            lease: DEFAULT_LEASE,
            fail_after: None,
            chunk: SEND_CHUNK,
            pause: None,
            settings: settings.clone(),
        }
    }

    /// The column giving each record's key.
    pub fn key(mut self, column: &str) -> KafkaPublish {
        self.key = Some(column.into());
        self
    }

    /// The column giving each record's value.
    pub fn value(mut self, column: &str) -> KafkaPublish {
        self.value = column.into();
        self
    }

    /// Publish each value of integer column `id` once, recorded in `db.table`.
    pub fn once_per(mut self, id: &str, db: &str, table: &str) -> KafkaPublish {
        self.ledger = Some(Ledger {
            id: id.into(),
            db: db.into(),
            table: table.into(),
            source: None,
        });
        self
    }

    /// The table the IDs of [`KafkaPublish::once_per`] come from: the ledger keeps them per
    /// creation of that table, so IDs of a table dropped and created again are new rows.
    pub fn source_table(mut self, db: &str, table: &str) -> KafkaPublish {
        if let Some(l) = &mut self.ledger {
            l.source = Some((db.into(), table.into()));
        }
        self
    }

    /// How long reservations of a run stay its own (default [`DEFAULT_LEASE`]).
    pub fn lease(mut self, lease: Duration) -> KafkaPublish {
        self.lease = lease;
        self
    }

    /// Test hook: records per chunk of sends (default [`SEND_CHUNK`]).
    #[doc(hidden)]
    pub fn send_chunk(mut self, n: usize) -> KafkaPublish {
        self.chunk = n.max(1);
        self
    }

    /// Test hook: stall this long after each chunk of sends (a slow broker, a paused process).
    #[doc(hidden)]
    pub fn pause_between_chunks(mut self, d: Duration) -> KafkaPublish {
        self.pause = Some(d);
        self
    }

    /// Test hook: send only the first `n` reserved rows, then fail as a crash would.
    #[doc(hidden)]
    pub fn fail_after_sends(mut self, n: usize) -> KafkaPublish {
        self.fail_after = Some(n);
        self
    }

    fn strings(df: &DataFrame, column: &str) -> Result<Vec<Option<String>>> {
        let c = df.column(column).map_err(|_| {
            Error::invalid(format!(
                "no column {column} among {:?}",
                df.get_column_names()
            ))
        })?;
        Ok(c.cast(&DataType::String)?
            .str()?
            .into_iter()
            .map(|o| o.map(str::to_string))
            .collect())
    }

    /// Publishes the rows of `df`.
    pub fn publish(&self, df: &DataFrame) -> Result<Published> {
        if self.value.is_empty() {
            return Err(Error::invalid(
                "say which column is the value: .value(\"COLUMN\")",
            ));
        }
        if df.height() == 0 {
            return Ok(Published::default());
        }
        let values = Self::strings(df, &self.value)?;
        let keys = match &self.key {
            Some(k) => Self::strings(df, k)?,
            None => vec![None; df.height()],
        };
        let Some(ledger) = &self.ledger else {
            let records: Vec<(Option<String>, String)> = keys
                .into_iter()
                .zip(values)
                .map(|(k, v)| (k, v.unwrap_or_default()))
                .collect();
            let n = kafka::produce_all(&self.settings, &self.topic, records)?;
            return Ok(Published {
                selected: n,
                published: n,
                ..Default::default()
            });
        };
        let ids: Vec<Option<i64>> = df
            .column(&ledger.id)?
            .cast(&DataType::Int64)?
            .i64()?
            .into_iter()
            .collect();
        let mut rows: Vec<(i64, Option<String>, String)> = Vec::with_capacity(ids.len());
        for ((id, k), v) in ids.into_iter().zip(keys).zip(values) {
            let id = id.ok_or_else(|| {
                Error::invalid(format!(
                    "a row has no {}: every row needs one to be published once",
                    ledger.id
                ))
            })?;
            rows.push((id, k, v.unwrap_or_default()));
        }
        rows.sort_by_key(|r| r.0);
        rows.dedup_by_key(|r| r.0);
        if let Some((id, _, v)) = rows.iter().find(|r| r.2.chars().count() > MAX_RECORD_VALUE) {
            return Err(Error::invalid(format!(
                "{} {id}: its value has {} characters, the ledger keeps at most {MAX_RECORD_VALUE} \
                 (it would be cut silently): shorten the values, or publish without once_per",
                ledger.id,
                v.chars().count()
            )));
        }
        self.publish_once(ledger, rows)
    }

    fn publish_once(
        &self,
        ledger: &Ledger,
        rows: Vec<(i64, Option<String>, String)>,
    ) -> Result<Published> {
        let s = &self.settings;
        let url = &s.mariadb;
        let mut out = Published {
            selected: rows.len(),
            ..Default::default()
        };
        if rows.is_empty() {
            return Ok(out);
        }
        let table = quote_ident(&ledger.table)?;
        ensure_ledger(s, &ledger.db, &ledger.table)?;
        let run = run_id();
        let mut c = mariadb::conn(s, Some(&ledger.db))?;
        let e = |what: &str| {
            let what = what.to_string();
            move |err| mariadb::map_err(url, &what, err)
        };
        let source = match &ledger.source {
            Some((db, t)) => {
                let (source, created) = incarnation(&mut c, url, db, t)?;
                // Rows a ledger kept before it had sources belong to this creation of the table
                // when they were reserved after it was created (server times, both).
                c.exec_drop(
                    format!("UPDATE IGNORE {table} SET SOURCE = ? WHERE SOURCE = '' AND RESERVED_AT >= ?"),
                    (source.as_str(), created.as_str()),
                )
                .map_err(e("give the ledger's older rows their source"))?;
                source
            }
            None => String::new(),
        };
        let header_of = |id: i64| {
            if source.is_empty() {
                id.to_string()
            } else {
                format!("{id}@{source}")
            }
        };
        // 1. Reserve what nobody has, take over what a run past its lease left reserved.
        for chunk in rows.chunks(500) {
            let mut params: Vec<Value> = Vec::with_capacity(chunk.len() * 4);
            for (id, _, v) in chunk {
                params.extend([
                    Value::from(source.as_str()),
                    Value::from(*id),
                    Value::from(v.as_str()),
                    Value::from(run.as_str()),
                ]);
            }
            let one = "(?, ?, ?, 'reserved', ?, NOW())";
            c.exec_drop(
                format!("INSERT IGNORE INTO {table} (SOURCE, ROW_ID, RECORD_VALUE, STATE, RUN_ID, RESERVED_AT) VALUES {}", vec![one; chunk.len()].join(", ")),
                params,
            )
            .map_err(e("reserve IDs in the ledger"))?;
            let list = vec!["?"; chunk.len()].join(", ");
            let mut params: Vec<Value> = vec![
                run.as_str().into(),
                run.as_str().into(),
                (self.lease.as_secs() as i64).into(),
                source.as_str().into(),
            ];
            params.extend(chunk.iter().map(|r| Value::from(r.0)));
            c.exec_drop(
                format!(
                    "UPDATE {table} SET STATE = 'retaken', RUN_ID = ?, RESERVED_AT = NOW() WHERE STATE IN ('reserved', 'retaken') \
                     AND RUN_ID <> ? AND RESERVED_AT <= NOW() - INTERVAL ? SECOND AND SOURCE = ? AND ROW_ID IN ({list})"
                ),
                params,
            )
            .map_err(e("take over stale reservations"))?;
        }
        let (lo, hi) = (rows[0].0, rows[rows.len() - 1].0);
        let states: Vec<(i64, String, Option<String>)> = c
            .exec(
                format!("SELECT ROW_ID, STATE, RUN_ID FROM {table} WHERE SOURCE = ? AND ROW_ID BETWEEN ? AND ?"),
                (source.as_str(), lo, hi),
            )
            .map_err(e("read the ledger"))?;
        let wanted: BTreeSet<i64> = rows.iter().map(|r| r.0).collect();
        let mut mine: BTreeSet<i64> = BTreeSet::new();
        let mut taken_over: BTreeSet<i64> = BTreeSet::new();
        for (id, state, owner) in states {
            if !wanted.contains(&id) {
                continue;
            }
            let own = owner.as_deref() == Some(run.as_str());
            match state.as_str() {
                "published" => out.published_before += 1,
                _ if !own => out.in_progress_elsewhere += 1,
                "retaken" => {
                    mine.insert(id);
                    taken_over.insert(id);
                }
                _ => {
                    mine.insert(id);
                }
            }
        }
        // 2. Rows taken over from a failed run may be in the topic already: their header says so.
        let mut already: BTreeSet<i64> = BTreeSet::new();
        if !taken_over.is_empty() {
            let by_header: std::collections::BTreeMap<String, i64> =
                taken_over.iter().map(|id| (header_of(*id), *id)).collect();
            for h in kafka::header_values(s, &self.topic, ID_HEADER, Duration::from_secs(60))?
                .into_iter()
                .flatten()
            {
                if let Some(id) = by_header.get(&h) {
                    already.insert(*id);
                }
            }
        }
        out.recovered = already.len();
        let mut to_send: Vec<(Option<String>, String, String)> = rows
            .iter()
            .filter(|r| mine.contains(&r.0) && !already.contains(&r.0))
            .map(|(id, k, v)| (k.clone(), v.clone(), header_of(*id)))
            .collect();
        let crash = self.fail_after.is_some_and(|n| n < to_send.len());
        if let Some(n) = self.fail_after {
            to_send.truncate(n);
        }
        let held = mine.len();
        for (i, chunk) in to_send.chunks(self.chunk).enumerate() {
            if i > 0 {
                if let Some(p) = self.pause {
                    std::thread::sleep(p);
                }
            }
            self.renew(&mut c, &table, &run, held)?;
            out.published +=
                kafka::produce_all_with_header(s, &self.topic, ID_HEADER, chunk.to_vec())?;
        }
        if crash {
            return Err(Error::Task(format!(
                "publish stopped after {} sends (test hook)",
                out.published
            )));
        }
        // 3. Confirm: every row this run holds, or an error.
        c.exec_drop(format!("UPDATE {table} SET STATE = 'published', PUBLISHED_AT = NOW() WHERE RUN_ID = ? AND STATE IN ('reserved', 'retaken')"), (run.as_str(),))
            .map_err(e("confirm the published IDs"))?;
        let confirmed = c.affected_rows() as usize;
        if confirmed != held {
            return Err(Error::Task(format!(
                "the ledger {}.{} confirmed {confirmed} of this run's {held} rows: another run took \
                 the others over (this run outlived its lease of {} s), so some may be in {} twice",
                ledger.db,
                ledger.table,
                self.lease.as_secs(),
                self.topic
            )));
        }
        Ok(out)
    }

    /// Renews this run's lease on its `held` rows; an error when another run took any over.
    fn renew(&self, c: &mut mysql::PooledConn, table: &str, run: &str, held: usize) -> Result<()> {
        let url = &self.settings.mariadb;
        c.exec_drop(
            format!("UPDATE {table} SET RESERVED_AT = NOW() WHERE RUN_ID = ? AND STATE IN ('reserved', 'retaken')"),
            (run,),
        )
        .map_err(|err| mariadb::map_err(url, "renew the ledger lease", err))?;
        let still: Option<i64> = c
            .exec_first(
                format!("SELECT COUNT(*) FROM {table} WHERE RUN_ID = ? AND STATE IN ('reserved', 'retaken')"),
                (run,),
            )
            .map_err(|err| mariadb::map_err(url, "count the run's reservations", err))?;
        let still = still.unwrap_or(0) as usize;
        if still != held {
            return Err(Error::Task(format!(
                "this publish held {held} rows of its ledger and now holds {still}: it stalled past its \
                 lease of {} s and another run took them over; it stops before sending more (run it \
                 again: the rows already in {} are found by their {ID_HEADER} header)",
                self.lease.as_secs(),
                self.topic
            )));
        }
        Ok(())
    }
}

/// Creates the ledger `db.table` if it is missing; a ledger made before sources were kept gets
/// the column `SOURCE` (its rows: source `''`, as publishes without a source table).
pub fn ensure_ledger(settings: &Settings, db: &str, table: &str) -> Result<()> {
    let t = quote_ident(table)?;
    mariadb::execute(
        settings,
        Some(db),
        &format!(
            "CREATE TABLE IF NOT EXISTS {t} (SOURCE VARCHAR(200) NOT NULL DEFAULT '', ROW_ID BIGINT NOT NULL, \
             RECORD_VALUE VARCHAR(255), STATE VARCHAR(10) NOT NULL, RUN_ID VARCHAR(100) NOT NULL, \
             RESERVED_AT DATETIME NOT NULL, PUBLISHED_AT DATETIME NULL, PRIMARY KEY (SOURCE, ROW_ID))"
        ),
    )?;
    let mut c = mariadb::conn(settings, Some(db))?;
    let has_source: Option<i64> = c
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND COLUMN_NAME = 'SOURCE'",
            (db, table),
        )
        .map_err(|e| mariadb::map_err(&settings.mariadb, "read the ledger's columns", e))?;
    if has_source == Some(0) {
        c.query_drop(format!(
            "ALTER TABLE {t} ADD COLUMN IF NOT EXISTS SOURCE VARCHAR(200) NOT NULL DEFAULT '' FIRST, \
             DROP PRIMARY KEY, ADD PRIMARY KEY (SOURCE, ROW_ID)"
        ))
        .map_err(|e| mariadb::map_err(&settings.mariadb, "add SOURCE to the ledger", e))?;
    }
    Ok(())
}

/// (`db.table@<creation time>`, the creation time): one creation of a table (dropped and created
/// again, it is another).
fn incarnation(
    c: &mut mysql::PooledConn,
    url: &str,
    db: &str,
    table: &str,
) -> Result<(String, String)> {
    let created: Option<Option<String>> = c
        .exec_first(
            "SELECT DATE_FORMAT(CREATE_TIME, '%Y-%m-%d %H:%i:%s') FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
            (db, table),
        )
        .map_err(|e| mariadb::map_err(url, "read the source table's creation time", e))?;
    match created {
        Some(Some(t)) => Ok((format!("{db}.{table}@{t}"), t)),
        _ => Err(Error::invalid(format!(
            "the source table {db}.{table} of the publish is missing (or has no creation time)"
        ))),
    }
}

/// Published rows per record value according to the ledger `db.table`, sorted by value.
pub fn ledger_counts(settings: &Settings, db: &str, table: &str) -> Result<Vec<(String, i64)>> {
    ensure_ledger(settings, db, table)?;
    let mut c = mariadb::conn(settings, Some(db))?;
    c.query_map(
        format!("SELECT RECORD_VALUE, COUNT(*) FROM {} WHERE STATE = 'published' GROUP BY RECORD_VALUE ORDER BY RECORD_VALUE", quote_ident(table)?),
        |(a, n): (Option<String>, i64)| (a.unwrap_or_default(), n),
    )
    .map_err(|e| mariadb::map_err(&settings.mariadb, "count the ledger", e))
}

/// This run's id: host, process, time (unique across kernels and reruns).
fn run_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{host}:{}:{nanos}", std::process::id())
}
