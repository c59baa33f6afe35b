//! MariaDB through the `mysql` crate: pools, connections, statements and the driver's errors.
//!
//! Rows become Polars frames in [`crate::batch::convert`] (one strict type mapping for the kit)
//! and Spark's JDBC ranges are [`crate::batch::ranges`]: this module knows the server only.
//!
//! Pools are cached per (URL, database) and open connections lazily, so a cell that only needs
//! one connection opens one. All SQL that carries values is parameterized.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use mysql::prelude::Queryable;
use mysql::{Opts, OptsBuilder, Pool, PoolConstraints, PoolOpts, PooledConn};

use crate::config::Settings;
use crate::error::{Error, Result, Service};
use crate::io::CONNECT_TIMEOUT;

/// Maps a driver error, telling "down" from "refused the request".
pub fn map_err(url: &str, action: &str, e: mysql::Error) -> Error {
    let address = Settings::address_of(url);
    match e {
        mysql::Error::IoError(_)
        | mysql::Error::DriverError(
            mysql::DriverError::CouldNotConnect(_)
            | mysql::DriverError::ConnectTimeout
            | mysql::DriverError::Timeout,
        ) => {
            Error::down(Service::MariaDb, address, format!("{action}: {e}"))
        }
        mysql::Error::MySqlError(ref m) if m.code == 1045 => Error::service(
            Service::MariaDb,
            address,
            action,
            format!("{e}. The course user is spark/spark: run `kernel/setup.sh` (it creates the user) or set BDE_MARIADB"),
        ),
        mysql::Error::MySqlError(ref m) if m.code == 1049 => Error::service(
            Service::MariaDb,
            address,
            action,
            format!("{e}. Run the setup notebook (code_00_03), which creates the course's databases"),
        ),
        other => Error::service(Service::MariaDb, address, action, other),
    }
}

/// Pools by (URL, database).
type PoolCache = Mutex<HashMap<(String, Option<String>), Pool>>;

static POOLS: OnceLock<PoolCache> = OnceLock::new();

/// A pool for `url` (optionally bound to database `db`), at most 8 connections, opened lazily.
pub fn pool_for(url: &str, db: Option<&str>) -> Result<Pool> {
    let key = (url.to_string(), db.map(str::to_string));
    let pools = POOLS.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(p) = pools
        .lock()
        .map_err(|_| Error::Task("pool cache poisoned".into()))?
        .get(&key)
    {
        return Ok(p.clone());
    }
    let opts = Opts::from_url(url).map_err(|e| {
        Error::invalid(format!(
            "'{}' is not a MariaDB URL ({e}); use mysql://user:password@host:port",
            Settings::address_of(url)
        ))
    })?;
    let constraints =
        PoolConstraints::new(0, 8).ok_or_else(|| Error::invalid("pool constraints"))?;
    let builder = OptsBuilder::from_opts(opts)
        .db_name(db)
        .tcp_connect_timeout(Some(CONNECT_TIMEOUT))
        .read_timeout(Some(Duration::from_secs(300)))
        .pool_opts(PoolOpts::default().with_constraints(constraints));
    let pool = Pool::new(builder).map_err(|e| map_err(url, "open a pool", e))?;
    pools
        .lock()
        .map_err(|_| Error::Task("pool cache poisoned".into()))?
        .insert(key, pool.clone());
    Ok(pool)
}

/// The course user's pool (`spark`), optionally bound to a database.
pub fn pool(settings: &Settings, db: Option<&str>) -> Result<Pool> {
    pool_for(&settings.mariadb, db)
}

/// A connection of the course user.
pub fn conn(settings: &Settings, db: Option<&str>) -> Result<PooledConn> {
    let p = pool(settings, db)?;
    p.try_get_conn(CONNECT_TIMEOUT * 3)
        .map_err(|e| map_err(&settings.mariadb, "connect", e))
}

/// A connection of the administrator (setup only).
pub fn admin_conn(settings: &Settings) -> Result<PooledConn> {
    let p = pool_for(&settings.mariadb_root, None)?;
    p.try_get_conn(CONNECT_TIMEOUT * 3)
        .map_err(|e| map_err(&settings.mariadb_root, "connect as administrator", e))
}

/// Runs statements without results.
pub fn execute(settings: &Settings, db: Option<&str>, sql: &str) -> Result<()> {
    let mut c = conn(settings, db)?;
    c.query_drop(sql)
        .map_err(|e| map_err(&settings.mariadb, &format!("run `{}`", short(sql)), e))
}

/// The first 60 characters of a statement, for error messages.
pub fn short(sql: &str) -> String {
    let one_line = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 60 {
        format!("{}…", one_line.chars().take(60).collect::<String>())
    } else {
        one_line
    }
}

/// Runs a query returning (text, integer) rows, e.g. `SELECT LAST_ACTION, SUM(DURATION) … GROUP BY
/// LAST_ACTION`; NULL text becomes empty, a NULL number 0.
pub fn pairs(settings: &Settings, db: &str, sql: &str) -> Result<Vec<(String, i64)>> {
    let mut c = conn(settings, Some(db))?;
    let rows: Vec<(Option<String>, Option<String>)> = c
        .query(sql)
        .map_err(|e| map_err(&settings.mariadb, &format!("run `{}`", short(sql)), e))?;
    rows.into_iter()
        .map(|(a, n)| {
            let n = n.unwrap_or_default();
            let v = if n.is_empty() {
                0
            } else {
                n.trim_end_matches(".0").parse::<i64>().map_err(|_| {
                    Error::invalid(format!("`{}` gave '{n}', not an integer", short(sql)))
                })?
            };
            Ok((a.unwrap_or_default(), v))
        })
        .collect()
}
