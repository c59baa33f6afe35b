//! Notebook 1, `code_00_03_Spark_BDE_Setup_Prerequisites`: the course's databases, tables,
//! topics and `raw_data/` folder, with the course's printed listings.
//!
//! Better than the course: every object is checked on its own (a database that exists without
//! its table gets the table; each missing topic is created), the grants to the course user are
//! re-applied every run, and [`report`] ends with one table of every service and object as it is
//! now. The course's pip / JAVA_HOME cell becomes [`environment`].

use std::fmt;
use std::path::PathBuf;
use std::process::Command;

use mysql::prelude::Queryable;

use crate::batch::layout;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::io::health::{health, Health};
use crate::io::mariadb::quote_ident;
use crate::io::{kafka, mariadb};
use crate::show::{Report, Table};

pub use crate::course::names::{
    GLOBAL_DB, STATS_DB as WEBSITE_DB, STOCK_TABLE, TOPICS, VISIT_STATS_TABLE as VISITS_TABLE,
    WAREHOUSE_DB,
};

/// Which of the three course tables a database holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    /// `warehouse_stock.item_stock`: local daily stock per warehouse.
    WarehouseStock,
    /// `global_stock.item_stock`: the consolidated stock.
    GlobalStock,
    /// `website_stats.visit_stats`: 5-second visit summaries.
    VisitStats,
}

impl TableKind {
    pub fn table_name(self) -> &'static str {
        match self {
            TableKind::WarehouseStock | TableKind::GlobalStock => STOCK_TABLE,
            TableKind::VisitStats => VISITS_TABLE,
        }
    }
}

/// The course's DDL (SPEC §2.1) for a table of `kind` in database `db`.
pub fn ddl(kind: TableKind, db: &str) -> Result<String> {
    let db = quote_ident(db)?;
    Ok(match kind {
        TableKind::WarehouseStock => format!(
            "CREATE TABLE {db}.`item_stock` (\
              `ID` INT NULL AUTO_INCREMENT,\
              `STOCK_DATE` DATETIME NOT NULL,\
              `WAREHOUSE_ID` VARCHAR(45) NOT NULL,\
              `ITEM_NAME` VARCHAR(45) NOT NULL,\
              `OPENING_STOCK` INT NOT NULL DEFAULT 0,\
              `RECEIPTS` INT NOT NULL DEFAULT 0,\
              `ISSUES` INT NOT NULL DEFAULT 0,\
              `UNIT_VALUE` DECIMAL(10,2) NOT NULL DEFAULT 0,\
              PRIMARY KEY (`ID`),\
              INDEX `STOCK_DATE` (`STOCK_DATE` ASC))"
        ),
        TableKind::GlobalStock => format!(
            "CREATE TABLE {db}.`item_stock` (\
              `ID` INT NULL AUTO_INCREMENT,\
              `STOCK_DATE` DATETIME NOT NULL,\
              `ITEM_NAME` VARCHAR(45) NOT NULL,\
              `TOTAL_REC` INT NOT NULL DEFAULT 0,\
              `OPENING_STOCK` INT NOT NULL DEFAULT 0,\
              `RECEIPTS` INT NOT NULL DEFAULT 0,\
              `ISSUES` INT NOT NULL DEFAULT 0,\
              `CLOSING_STOCK` INT NOT NULL DEFAULT 0,\
              `CLOSING_VALUE` DECIMAL(10,2) NOT NULL DEFAULT 0,\
              PRIMARY KEY (`ID`),\
              INDEX `STOCK_DATE` (`STOCK_DATE` ASC))"
        ),
        TableKind::VisitStats => format!(
            "CREATE TABLE {db}.`visit_stats` (\
              `ID` INT(11) NOT NULL AUTO_INCREMENT,\
              `INTERVAL_TIMESTAMP` DATETIME DEFAULT NULL,\
              `LAST_ACTION` VARCHAR(45) DEFAULT NULL,\
              `DURATION` INT(10) DEFAULT NULL,\
              PRIMARY KEY (`ID`))"
        ),
    })
}

/// What to set up: database names, topics, partitions, and the user to grant to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupPlan {
    pub warehouse_db: String,
    pub global_db: String,
    pub website_db: String,
    pub topics: Vec<String>,
    /// Partitions per topic (the course: 1).
    pub partitions: i32,
    /// The user that gets ALL PRIVILEGES on the databases (from any host, `'<user>'@'%'`).
    pub grantee: String,
}

impl SetupPlan {
    /// The course's names, 1 partition per topic, grants to `spark`.
    pub fn course() -> SetupPlan {
        SetupPlan {
            warehouse_db: WAREHOUSE_DB.into(),
            global_db: GLOBAL_DB.into(),
            website_db: WEBSITE_DB.into(),
            topics: TOPICS.iter().map(|t| t.to_string()).collect(),
            partitions: 1,
            grantee: "spark".into(),
        }
    }

    /// The course's objects with every name prefixed (`<prefix>_warehouse_stock`,
    /// `<prefix>.spark.streaming.website.visits`, …), for tests and trials.
    pub fn prefixed(prefix: &str) -> SetupPlan {
        let c = SetupPlan::course();
        SetupPlan {
            warehouse_db: format!("{prefix}_{}", c.warehouse_db),
            global_db: format!("{prefix}_{}", c.global_db),
            website_db: format!("{prefix}_{}", c.website_db),
            topics: c.topics.iter().map(|t| format!("{prefix}.{t}")).collect(),
            ..c
        }
    }

    /// Partitions per topic.
    pub fn with_partitions(mut self, partitions: i32) -> SetupPlan {
        self.partitions = partitions;
        self
    }

    /// `(database, table kind)` in the course's order.
    pub fn databases(&self) -> Vec<(String, TableKind)> {
        vec![
            (self.warehouse_db.clone(), TableKind::WarehouseStock),
            (self.global_db.clone(), TableKind::GlobalStock),
            (self.website_db.clone(), TableKind::VisitStats),
        ]
    }
}

/// What a setup step did to one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// `MariaDB`, `Kafka` or `Files`.
    pub service: String,
    pub object: String,
    /// `created`, `exists`, `table created`, …
    pub status: String,
}

/// The outcomes of one setup step; shows as a table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcomes(pub Vec<Outcome>);

impl Outcomes {
    fn push(&mut self, service: &str, object: impl Into<String>, status: impl Into<String>) {
        self.0.push(Outcome {
            service: service.into(),
            object: object.into(),
            status: status.into(),
        });
    }

    /// The status of an object, if this step touched it.
    pub fn status_of(&self, object: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|o| o.object == object)
            .map(|o| o.status.as_str())
    }

    pub fn table(&self) -> Table {
        Table::from_rows(
            &["service", "object", "status"],
            self.0
                .iter()
                .map(|o| vec![o.service.clone(), o.object.clone(), o.status.clone()])
                .collect(),
        )
    }

    pub fn evcxr_display(&self) {
        self.table().evcxr_display()
    }
}

impl fmt::Display for Outcomes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.table())
    }
}

fn python_list(items: &[String]) -> String {
    format!(
        "[{}]",
        items
            .iter()
            .map(|s| format!("'{s}'"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn admin_err(settings: &Settings, action: &str, e: mysql::Error) -> Error {
    mariadb::map_err(&settings.mariadb_root, action, e)
}

fn table_exists(
    c: &mut impl Queryable,
    db: &str,
    table: &str,
) -> std::result::Result<bool, mysql::Error> {
    let n: Option<i64> = c.exec_first(
        "SELECT COUNT(*) FROM information_schema.tables WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
        (db, table),
    )?;
    Ok(n.unwrap_or(0) > 0)
}

/// Creates the three databases and tables as the administrator (`Settings.mariadb_root`),
/// grants ALL on each to the plan's user from any host, and prints the course's lines:
/// `Databases available : [...]`, per database `<db> DB already exists.` or
/// `Going to create <db> DB` … `<db> DB successfully created`, then `Schema and Tables:` with
/// one `<db>  :  <table>` line per table.
pub fn setup_mariadb(settings: &Settings, plan: &SetupPlan) -> Result<Outcomes> {
    let grantee = plan.grantee.clone();
    quote_ident(&grantee)?;
    let mut c = mariadb::admin_conn(settings)?;
    // As the course user itself (the default login, see `config`), the grants are those
    // kernel/setup.sh gave it; granting to oneself is neither needed nor allowed.
    let me: Option<String> = c
        .query_first("SELECT SUBSTRING_INDEX(CURRENT_USER(), '@', 1)")
        .map_err(|e| admin_err(settings, "read the login", e))?;
    let grant = me.as_deref() != Some(grantee.as_str());
    let dbs: Vec<String> = c
        .query("SHOW DATABASES")
        .map_err(|e| admin_err(settings, "list databases", e))?;
    let shown: Vec<String> = dbs
        .iter()
        .map(|d| crate::untrusted::line(d).into_owned())
        .collect();
    println!("Databases available : {}", python_list(&shown));
    let mut out = Outcomes::default();
    for (db, kind) in plan.databases() {
        let qdb = quote_ident(&db)?;
        let table = kind.table_name();
        let object = format!("{db}.{table}");
        if dbs.iter().any(|d| d == &db) {
            println!("{db} DB already exists.");
            if table_exists(&mut c, &db, table)
                .map_err(|e| admin_err(settings, "look up tables", e))?
            {
                out.push("MariaDB", object, "exists");
            } else {
                println!("Table {object} is missing: going to create it");
                c.query_drop(ddl(kind, &db)?)
                    .map_err(|e| admin_err(settings, &format!("create table {object}"), e))?;
                println!("Table {object} successfully created");
                out.push("MariaDB", object, "table created");
            }
        } else {
            println!("Going to create {db} DB");
            c.query_drop(format!("CREATE DATABASE {qdb}"))
                .map_err(|e| admin_err(settings, &format!("create database {db}"), e))?;
            c.query_drop(ddl(kind, &db)?)
                .map_err(|e| admin_err(settings, &format!("create table {object}"), e))?;
            println!("{db} DB successfully created");
            out.push("MariaDB", object, "created");
        }
        if !grant {
            continue;
        }
        c.query_drop(format!(
            "GRANT ALL PRIVILEGES ON {qdb}.* TO '{grantee}'@'%'"
        ))
        .map_err(|e| {
            let hint = format!(
                "grant {db} to {grantee}: {e}. If the user is missing, create it as administrator: \
                 CREATE USER '{grantee}'@'%' IDENTIFIED BY '…' (kernel/setup.sh does)"
            );
            Error::service(
                crate::error::Service::MariaDb,
                Settings::address_of(&settings.mariadb_root),
                "grant privileges",
                hint,
            )
        })?;
    }
    let names: Vec<String> = plan.databases().into_iter().map(|(d, _)| d).collect();
    let rows: Vec<(String, String)> = c
        .exec(
            "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.tables WHERE TABLE_SCHEMA IN (?, ?, ?) ORDER BY TABLE_SCHEMA, TABLE_NAME",
            (names[0].as_str(), names[1].as_str(), names[2].as_str()),
        )
        .map_err(|e| admin_err(settings, "list tables", e))?;
    println!("\nSchema and Tables:\n-----------------------------------");
    for (s, t) in rows {
        println!("{s}  :  {t}");
    }
    Ok(out)
}

/// Creates each missing topic of the plan (`plan.partitions` partitions, replication 1) and
/// prints `Creating topics...` when it does, then `Topics available now :` and every topic.
pub fn setup_kafka(settings: &Settings, plan: &SetupPlan) -> Result<Outcomes> {
    let existing = kafka::list_topics(settings)?;
    let missing: Vec<&str> = plan
        .topics
        .iter()
        .map(String::as_str)
        .filter(|t| !existing.iter().any(|e| e == t))
        .collect();
    let mut out = Outcomes::default();
    if !missing.is_empty() {
        println!("Creating topics...");
        kafka::create_topics(settings, &missing, plan.partitions)?;
    }
    for t in &plan.topics {
        let status = if missing.contains(&t.as_str()) {
            format!("created ({} partition(s))", plan.partitions)
        } else {
            "exists".into()
        };
        out.push("Kafka", t.clone(), status);
    }
    let now = kafka::list_topics(settings)?;
    println!("Topics available now :\n-----------------------------------");
    for t in &now {
        println!("{t}");
    }
    Ok(out)
}

/// Creates the data folder (the course's `./raw_data`) if it is missing; prints nothing, like
/// the course.
pub fn setup_raw_data(settings: &Settings) -> Result<Outcomes> {
    let dir = &settings.data_dir;
    let existed = dir.is_dir();
    std::fs::create_dir_all(dir).map_err(|e| Error::file(dir, e))?;
    let mut out = Outcomes::default();
    out.push(
        "Files",
        absolute(dir).display().to_string(),
        if existed { "exists" } else { "created" },
    );
    Ok(out)
}

fn absolute(p: &std::path::Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Every service and object of the plan as it is now.
#[derive(Debug, Clone)]
pub struct SetupReport {
    pub health: Health,
    /// service, object, state, detail
    pub rows: Vec<[String; 4]>,
}

impl SetupReport {
    /// True when every service is up and every object is present.
    pub fn all_ready(&self) -> bool {
        self.health.all_up() && self.rows.iter().all(|r| r[2] == "ready" || r[2] == "up")
    }

    pub fn table(&self) -> Table {
        Table::from_rows(
            &["service", "object", "state", "detail"],
            self.rows.iter().map(|r| r.to_vec()).collect(),
        )
        .title("Setup report")
        .rows(1000)
    }

    pub fn evcxr_display(&self) {
        self.table().evcxr_display()
    }
}

impl fmt::Display for SetupReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.table())
    }
}

/// Looks at every service and object of the plan now: services (address, version), the three
/// tables (row counts), the topics (partitions) and the data folder (files).
pub fn report(settings: &Settings, plan: &SetupPlan) -> SetupReport {
    let health = crate::io::health::health(settings);
    let mut rows: Vec<[String; 4]> = Vec::new();
    for s in &health.services {
        rows.push([
            s.service.to_string(),
            s.address.clone(),
            if s.up { "up".into() } else { "down".into() },
            s.detail.clone(),
        ]);
    }
    let db_rows: Vec<[String; 4]> = match mariadb::conn(settings, None) {
        Ok(mut c) => plan
            .databases()
            .into_iter()
            .map(|(db, kind)| {
                let object = format!("{db}.{}", kind.table_name());
                let count = quote_ident(&db).and_then(|q| {
                    c.query_first::<i64, _>(format!(
                        "SELECT COUNT(*) FROM {q}.`{}`",
                        kind.table_name()
                    ))
                    .map_err(|e| mariadb::map_err(&settings.mariadb, "count rows", e))
                });
                match count {
                    Ok(n) => [
                        "MariaDB".into(),
                        object,
                        "ready".into(),
                        format!("{} rows", n.unwrap_or(0)),
                    ],
                    Err(e) => ["MariaDB".into(), object, "missing".into(), e.to_string()],
                }
            })
            .collect(),
        Err(e) => plan
            .databases()
            .into_iter()
            .map(|(db, k)| {
                [
                    "MariaDB".into(),
                    format!("{db}.{}", k.table_name()),
                    "unknown".into(),
                    e.to_string(),
                ]
            })
            .collect(),
    };
    rows.extend(db_rows);
    for t in &plan.topics {
        match kafka::partitions(settings, t) {
            Ok(p) => rows.push([
                "Kafka".into(),
                t.clone(),
                "ready".into(),
                format!("{} partition(s)", p.len()),
            ]),
            Err(e) => rows.push(["Kafka".into(), t.clone(), "missing".into(), e.to_string()]),
        }
    }
    let dir = &settings.data_dir;
    if dir.is_dir() {
        let files = layout::list_files(dir).map(|f| f.len()).unwrap_or(0);
        rows.push([
            "Files".into(),
            absolute(dir).display().to_string(),
            "ready".into(),
            format!("{files} Parquet file(s)"),
        ]);
    } else {
        rows.push([
            "Files".into(),
            dir.display().to_string(),
            "missing".into(),
            "run setup_raw_data".into(),
        ]);
    }
    SetupReport { health, rows }
}

fn command_version(cmd: &str, arg: &str) -> String {
    match Command::new(cmd).arg(arg).output() {
        Ok(o) if o.status.success() => {
            let out = String::from_utf8_lossy(&o.stdout).into_owned()
                + &String::from_utf8_lossy(&o.stderr);
            match out.lines().map(str::trim).find(|l| !l.is_empty()) {
                Some(l) => l.to_string(),
                None => format!("{cmd} found (it reports no version)"),
            }
        }
        Ok(o) => format!(
            "{cmd} {arg} failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => format!("not found on PATH ({e})"),
    }
}

/// The environment check that replaces the course's pip / JAVA_HOME cell: toolchain and kernel,
/// kit and library versions, folders, and the three services.
#[derive(Debug, Clone)]
pub struct Environment {
    pub rows: Vec<[String; 2]>,
    pub health: Health,
}

impl Environment {
    pub fn report(&self) -> Report {
        let t = Table::from_rows(
            &["item", "value"],
            self.rows.iter().map(|r| r.to_vec()).collect(),
        )
        .rows(1000);
        Report::new()
            .heading("Environment")
            .table(t)
            .heading("Services")
            .html(self.health.to_html())
    }

    pub fn evcxr_display(&self) {
        self.report().evcxr_display()
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for [k, v] in &self.rows {
            writeln!(f, "{k:<14} {v}")?;
        }
        write!(f, "{}", self.health)
    }
}

/// Looks at the toolchain (`rustc`, `cargo`, the evcxr kernel), the kit and its libraries, the
/// folders and the services. Prints nothing; the value shows as a table.
pub fn environment(settings: &Settings) -> Environment {
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "unknown".into());
    // evcxr_jupyter has no --version; cargo knows which version it installed.
    let kernel = Command::new("cargo")
        .args(["install", "--list"])
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .find(|l| l.starts_with("evcxr_jupyter "))
                .map(|l| l.trim_end_matches(':').to_string())
        })
        .unwrap_or_else(|| "evcxr_jupyter (version unknown)".into());
    let rows = vec![
        ["bde_kit".to_string(), env!("CARGO_PKG_VERSION").to_string()],
        ["rustc".into(), command_version("rustc", "--version")],
        ["cargo".into(), command_version("cargo", "--version")],
        ["kernel".into(), kernel],
        ["process".into(), exe],
        ["polars".into(), polars::VERSION.to_string()],
        [
            "os".into(),
            format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        ],
        [
            "cpus".into(),
            std::thread::available_parallelism()
                .map(|n| n.to_string())
                .unwrap_or_else(|_| "?".into()),
        ],
        [
            "working dir".into(),
            std::env::current_dir()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        ],
        [
            "data dir".into(),
            absolute(&settings.data_dir).display().to_string(),
        ],
        [
            "MariaDB URL".into(),
            Settings::address_of(&settings.mariadb),
        ],
        ["Kafka".into(), settings.kafka.clone()],
        ["Redis".into(), Settings::address_of(&settings.redis)],
    ];
    Environment {
        rows,
        health: health(settings),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddl_is_the_course_ddl() {
        let w = ddl(TableKind::WarehouseStock, "warehouse_stock").expect("ddl");
        assert!(
            w.starts_with(
                "CREATE TABLE `warehouse_stock`.`item_stock` (`ID` INT NULL AUTO_INCREMENT,"
            ),
            "{w}"
        );
        assert!(w.contains("`UNIT_VALUE` DECIMAL(10,2) NOT NULL DEFAULT 0,"));
        assert!(w.ends_with("INDEX `STOCK_DATE` (`STOCK_DATE` ASC))"));
        let g = ddl(TableKind::GlobalStock, "global_stock").expect("ddl");
        assert!(
            g.contains("`TOTAL_REC` INT NOT NULL DEFAULT 0,")
                && g.contains("`CLOSING_VALUE` DECIMAL(10,2)")
        );
        let v = ddl(TableKind::VisitStats, "website_stats").expect("ddl");
        assert!(v.contains("`DURATION` INT(10) DEFAULT NULL") && !v.contains("INDEX"));
        assert!(ddl(TableKind::VisitStats, "x`y").is_err());
    }

    #[test]
    fn prefixed_plan_renames_everything() {
        let p = SetupPlan::prefixed("bde_test_1");
        assert_eq!(p.warehouse_db, "bde_test_1_warehouse_stock");
        assert_eq!(p.topics[0], "bde_test_1.spark.streaming.website.visits");
        assert_eq!(python_list(&["a".into(), "b".into()]), "['a', 'b']");
    }
}
