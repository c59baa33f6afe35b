//! Shared helpers of the batch and setup integration tests: unique `bde_test_*` databases
//! (dropped at the end), temporary data folders, and the fixed dates of the tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use bde_kit::batch::TableRef;
use bde_kit::chrono::NaiveDate;
use bde_kit::course::setup::{ddl, TableKind};
use bde_kit::course::stock::StockJob;
use bde_kit::mysql::prelude::Queryable;
use bde_kit::Settings;

static N: AtomicUsize = AtomicUsize::new(0);

/// A name unique to this process and call: `bde_test_<what>_<pid>_<n>`.
pub fn unique(what: &str) -> String {
    format!(
        "bde_test_{what}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

pub fn settings() -> Settings {
    Settings::from_env()
}

pub fn admin() -> bde_kit::mysql::Conn {
    bde_kit::batch::worker_conn(&settings().mariadb_root)
        .expect("administrator connection (root, empty password)")
}

pub fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
}

/// Drops its databases and removes its folder when dropped.
pub struct Sandbox {
    pub dbs: Vec<String>,
    pub dir: PathBuf,
}

impl Sandbox {
    pub fn new(what: &str) -> Sandbox {
        let dir = std::env::temp_dir().join(unique(what));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Sandbox {
            dbs: Vec::new(),
            dir,
        }
    }

    /// Creates a database with one of the course tables (course DDL) and returns its name.
    pub fn database(&mut self, what: &str, kind: Option<TableKind>) -> String {
        let db = unique(what);
        let mut c = admin();
        c.query_drop(format!("CREATE DATABASE `{db}`"))
            .expect("create database");
        if let Some(k) = kind {
            c.query_drop(ddl(k, &db).expect("ddl"))
                .expect("create table");
        }
        self.dbs.push(db.clone());
        db
    }

    /// Remembers a database created elsewhere, so it is dropped too.
    pub fn adopt(&mut self, db: &str) {
        self.dbs.push(db.to_string());
    }

    /// A stock job on fresh warehouse and global databases and a fresh data folder.
    pub fn stock_job(&mut self) -> StockJob {
        let w = self.database("batch", Some(TableKind::WarehouseStock));
        let g = self.database("batch", Some(TableKind::GlobalStock));
        StockJob::in_databases(&w, &g, self.dir.join("raw_data")).expect("job")
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Ok(mut c) = bde_kit::batch::worker_conn(&settings().mariadb_root) {
            for db in &self.dbs {
                let _ = c.query_drop(format!("DROP DATABASE IF EXISTS `{db}`"));
                // Setup grants per database; drop those grants too (they outlive the database).
                let _ = c.query_drop(format!(
                    "REVOKE ALL PRIVILEGES ON `{db}`.* FROM 'spark'@'%'"
                ));
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Rows of a query as strings.
pub fn query_strings(table: &TableRef, sql: &str) -> Vec<Vec<String>> {
    let mut c = bde_kit::batch::worker_conn(&settings().mariadb).expect("conn");
    let sql = sql.replace("{t}", &table.sql().expect("sql"));
    let rows: Vec<bde_kit::mysql::Row> = c.query(sql).expect("query");
    rows.into_iter()
        .map(|r| {
            (0..r.len())
                .map(|i| match r.as_ref(i) {
                    Some(bde_kit::mysql::Value::Bytes(b)) => {
                        String::from_utf8_lossy(b).into_owned()
                    }
                    Some(bde_kit::mysql::Value::Int(v)) => v.to_string(),
                    Some(bde_kit::mysql::Value::UInt(v)) => v.to_string(),
                    Some(bde_kit::mysql::Value::NULL) | None => "NULL".into(),
                    Some(other) => format!("{other:?}"),
                })
                .collect()
        })
        .collect()
}
