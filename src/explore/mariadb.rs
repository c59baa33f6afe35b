//! MariaDB by hand: `sql` (read-only, bounded, the kit's strict converter), `sql_write` (the
//! explicit call for a statement that changes data), `tables`, `tables_in` and `describe`.
//!
//! Read-only is enforced twice: the statement must start with a reading keyword (`SELECT`,
//! `WITH`, `SHOW`, `DESCRIBE`/`DESC`, `EXPLAIN`, `VALUES`, `TABLE`), and it runs inside a
//! `START TRANSACTION READ ONLY` that is rolled back, so a function that writes is refused by
//! the server too. The row limit is the session's `sql_select_limit` (the server stops after
//! limit + 1 rows; the extra row only tells that the result was cut).

use mysql::prelude::Queryable;
use mysql::Params;
use polars::prelude::*;

use crate::batch::convert::typed_frame;
use crate::batch::TableRef;
use crate::config::Settings;
use crate::error::{Error, Result, Service};
use crate::explore::{cut_note, human_bytes, Explored, Explorer};
use crate::io::mariadb::{conn, map_err, quote_ident, short};

/// The first keywords of statements that only read.
const READING: [&str; 8] = [
    "SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "VALUES", "TABLE",
];

/// Databases of the server itself, left out of [`Explorer::tables`].
const SYSTEM_DBS: [&str; 4] = ["mysql", "information_schema", "performance_schema", "sys"];

/// The statement's first keyword, after comments, blanks and opening parentheses.
pub fn first_keyword(sql: &str) -> String {
    let mut rest = sql;
    loop {
        let t = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '(');
        if let Some(r) = t.strip_prefix("/*") {
            rest = r.split_once("*/").map_or("", |(_, after)| after);
        } else if t.starts_with("--") || t.starts_with('#') {
            rest = t.split_once('\n').map_or("", |(_, after)| after);
        } else {
            return t
                .chars()
                .take_while(|c| c.is_ascii_alphabetic())
                .collect::<String>()
                .to_ascii_uppercase();
        }
    }
}

/// True when `sql` starts with a reading keyword ([`READING`]).
pub fn is_reading(sql: &str) -> bool {
    READING.contains(&first_keyword(sql).as_str())
}

fn address(settings: &Settings) -> String {
    Settings::address_of(&settings.mariadb)
}

fn refused(settings: &Settings, sql: &str, why: &str) -> Error {
    Error::service(
        Service::MariaDb,
        address(settings),
        format!("run `{}` read-only", short(sql)),
        format!(
            "{why}. Explorer::sql only reads; if you mean to change data, call \
             Explorer::sql_write(db, sql, params)"
        ),
    )
}

impl Explorer {
    /// Runs a query (`?` for each parameter: `("Catalog", 5)`, or `()` for none) in database
    /// `db`, read-only, and returns at most [`Explorer::limit`] rows, said when cut.
    pub fn sql(&self, db: &str, sql: &str, params: impl Into<Params>) -> Result<Explored> {
        let s = &self.settings;
        if !is_reading(sql) {
            return Err(refused(
                s,
                sql,
                &format!("`{}` is not a reading statement", first_keyword(sql)),
            ));
        }
        let mut c = conn(s, Some(db))?;
        let limit = self.limit;
        let setup = format!("SET SESSION sql_select_limit = {}", limit + 1);
        c.query_drop(&setup)
            .and_then(|_| c.query_drop("START TRANSACTION READ ONLY"))
            .map_err(|e| map_err(&s.mariadb, "start a read-only transaction", e))?;
        let result = typed_frame(&s.mariadb, &mut c, sql, params, limit);
        let _ = c.query_drop("ROLLBACK");
        let _ = c.query_drop("SET SESSION sql_select_limit = DEFAULT");
        let (frame, cut) = result.map_err(|e| match e {
            Error::Service { ref detail, .. }
                if detail.contains("1792") || detail.contains("READ ONLY transaction") =>
            {
                refused(
                    s,
                    sql,
                    "the server refused a write inside the read-only transaction",
                )
            }
            other => other,
        })?;
        let shown = frame.height();
        let mut out = Explored::new(format!("MariaDB {}: {db}", address(s)), short(sql), frame);
        if cut {
            out = out.note(cut_note(shown, "more", "rows", limit));
        }
        Ok(out)
    }

    /// Runs a statement that changes data (INSERT, UPDATE, DELETE, DDL) in database `db`: the
    /// explicit call [`Explorer::sql`] asks for. Returns the rows affected and the last id.
    pub fn sql_write(&self, db: &str, sql: &str, params: impl Into<Params>) -> Result<Explored> {
        let s = &self.settings;
        let mut c = conn(s, Some(db))?;
        let r = c
            .exec_iter(sql, params)
            .map_err(|e| map_err(&s.mariadb, &format!("run `{}`", short(sql)), e))?;
        let affected = r.affected_rows();
        let last_id = r.last_insert_id();
        drop(r);
        let frame = df!(
            "rows affected" => [affected],
            "last insert id" => [last_id.unwrap_or(0)],
        )?;
        Ok(Explored::new(
            format!("MariaDB {}: {db} (write)", address(s)),
            short(sql),
            frame,
        ))
    }

    /// Every table the course user sees outside the server's own databases: schema, table,
    /// engine, rows (exact `COUNT(*)`), size (data and indexes).
    pub fn tables(&self) -> Result<Explored> {
        self.table_list(None)
    }

    /// The tables of one database, as [`Explorer::tables`].
    pub fn tables_in(&self, db: &str) -> Result<Explored> {
        quote_ident(db)?;
        self.table_list(Some(db))
    }

    fn table_list(&self, only: Option<&str>) -> Result<Explored> {
        let s = &self.settings;
        let mut c = conn(s, None)?;
        let sql = format!(
            "SELECT TABLE_SCHEMA, TABLE_NAME, COALESCE(ENGINE, TABLE_TYPE), \
             CAST(COALESCE(DATA_LENGTH, 0) + COALESCE(INDEX_LENGTH, 0) AS SIGNED), TABLE_TYPE \
             FROM information_schema.TABLES WHERE TABLE_SCHEMA NOT IN ({}) {} \
             ORDER BY TABLE_SCHEMA, TABLE_NAME",
            SYSTEM_DBS.map(|d| format!("'{d}'")).join(", "),
            if only.is_some() {
                "AND TABLE_SCHEMA = ?"
            } else {
                ""
            }
        );
        let params: Params = match only {
            Some(db) => (db,).into(),
            None => Params::Empty,
        };
        type Listed = (String, String, Option<String>, Option<i64>, String);
        let listed: Vec<Listed> = c
            .exec(&sql, params)
            .map_err(|e| map_err(&s.mariadb, "list tables", e))?;
        let cut = listed.len() > self.limit;
        let (mut schema, mut table, mut engine, mut rows, mut bytes, mut size) =
            (vec![], vec![], vec![], vec![], vec![], vec![]);
        for (db, name, eng, b, kind) in listed.into_iter().take(self.limit) {
            let count = if kind == "BASE TABLE" {
                let q = TableRef::new(db.as_str(), name.as_str())
                    .and_then(|t| t.sql())
                    .ok();
                match q {
                    Some(q) => match c.query_first::<i64, _>(format!("SELECT COUNT(*) FROM {q}")) {
                        Ok(n) => n,
                        // dropped since it was listed (another session's test tables)
                        Err(mysql::Error::MySqlError(ref e))
                            if e.code == 1146 || e.code == 1049 =>
                        {
                            continue
                        }
                        Err(e) => {
                            return Err(map_err(&s.mariadb, &format!("count {db}.{name}"), e))
                        }
                    },
                    None => None,
                }
            } else {
                None
            };
            schema.push(db);
            table.push(name);
            engine.push(eng);
            rows.push(count);
            bytes.push(b);
            size.push(b.map(human_bytes));
        }
        let n = schema.len();
        let frame = df!(
            "schema" => schema,
            "table" => table,
            "engine" => engine,
            "rows" => rows,
            "bytes" => bytes,
            "size" => size,
        )?;
        let title = match only {
            Some(db) => format!("MariaDB {}: tables of {db}", address(s)),
            None => format!("MariaDB {}: tables", address(s)),
        };
        let mut out = Explored::new(title, "tables", frame)
            .note("rows: exact COUNT(*); size: data and indexes as the server reports them");
        if cut {
            out = out.note(cut_note(n, "more", "tables", self.limit));
        }
        Ok(out)
    }

    /// Columns (name, type, nullable, key, default, extra) and indexes of `"db.table"`.
    pub fn describe(&self, table: &str) -> Result<Explored> {
        let s = &self.settings;
        let (db, name) = table.split_once('.').ok_or_else(|| {
            Error::invalid(format!("'{table}' names no database: write \"db.table\""))
        })?;
        let t = TableRef::new(db, name)?;
        let mut c = conn(s, None)?;
        type Col = (String, String, String, String, Option<String>, String);
        let cols: Vec<Col> = c
            .exec(
                "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_KEY, COLUMN_DEFAULT, EXTRA \
                 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? \
                 ORDER BY ORDINAL_POSITION",
                (&t.db, &t.table),
            )
            .map_err(|e| map_err(&s.mariadb, &format!("describe {t}"), e))?;
        if cols.is_empty() {
            return Err(Error::service(
                Service::MariaDb,
                address(s),
                format!("describe {t}"),
                "no such table (or the course user may not see it): list them with Explorer::tables()",
            ));
        }
        let frame = df!(
            "column" => cols.iter().map(|c| c.0.clone()).collect::<Vec<_>>(),
            "type" => cols.iter().map(|c| c.1.clone()).collect::<Vec<_>>(),
            "nullable" => cols.iter().map(|c| c.2 == "YES").collect::<Vec<_>>(),
            "key" => cols.iter().map(|c| c.3.clone()).collect::<Vec<_>>(),
            "default" => cols.iter().map(|c| c.4.clone()).collect::<Vec<_>>(),
            "extra" => cols.iter().map(|c| c.5.clone()).collect::<Vec<_>>(),
        )?;
        type Index = (String, i64, String, String);
        let idx: Vec<Index> = c
            .exec(
                "SELECT INDEX_NAME, MIN(NON_UNIQUE), \
                 GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX SEPARATOR ', '), MIN(INDEX_TYPE) \
                 FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? \
                 GROUP BY INDEX_NAME ORDER BY INDEX_NAME <> 'PRIMARY', INDEX_NAME",
                (&t.db, &t.table),
            )
            .map_err(|e| map_err(&s.mariadb, &format!("read the indexes of {t}"), e))?;
        let indexes = df!(
            "index" => idx.iter().map(|i| i.0.clone()).collect::<Vec<_>>(),
            "unique" => idx.iter().map(|i| i.1 == 0).collect::<Vec<_>>(),
            "columns" => idx.iter().map(|i| i.2.clone()).collect::<Vec<_>>(),
            "type" => idx.iter().map(|i| i.3.clone()).collect::<Vec<_>>(),
        )?;
        Ok(
            Explored::new(format!("MariaDB {}: {t}", address(s)), "columns", frame)
                .and_table("indexes", indexes),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_reading_statements_pass_the_keyword_check() {
        for sql in [
            "SELECT 1",
            "  select * from t",
            "/* why */ SELECT 1",
            "-- note\nWITH x AS (SELECT 1) SELECT * FROM x",
            "(SELECT 1) UNION (SELECT 2)",
            "show tables",
            "DESC t",
        ] {
            assert!(is_reading(sql), "{sql}");
        }
        for sql in [
            "DELETE FROM t",
            "/* SELECT */ DROP TABLE t",
            "UPDATE t SET a = 1",
            "INSERT INTO t VALUES (1)",
            "CALL p()",
            "SELECTED",
            "",
        ] {
            assert!(!is_reading(sql), "{sql}");
        }
    }
}
