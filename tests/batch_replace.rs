//! `JdbcWrite::replace_matching` against the real MariaDB (issue 19, item 11): a `Datetime` key
//! replaces the rows of that instant only (not its whole day), a `Date` key its whole day, and a
//! null key the NULL rows.

#[path = "batch_support/mod.rs"]
mod batch_support;

use batch_support::{admin, settings, Sandbox};
use bde_kit::batch::jdbc_write::JdbcWrite;
use bde_kit::batch::TableRef;
use bde_kit::mysql::prelude::Queryable;
use bde_kit::polars::prelude::*;

fn table(sb: &mut Sandbox) -> (String, TableRef) {
    let db = sb.database("replace", None);
    admin()
        .query_drop(format!(
            "CREATE TABLE `{db}`.t (K DATETIME NULL, V INT NOT NULL)"
        ))
        .expect("table");
    admin()
        .query_drop(format!(
            "INSERT INTO `{db}`.t VALUES ('2024-08-12 10:00:00', 1), ('2024-08-12 11:00:00', 2), (NULL, 3), ('2024-08-13 10:00:00', 4)"
        ))
        .expect("rows");
    let t = TableRef::new(&db, "t").expect("table ref");
    (db, t)
}

fn rows(db: &str) -> Vec<(Option<String>, i32)> {
    admin()
        .query(format!(
            "SELECT DATE_FORMAT(K, '%Y-%m-%d %H:%i:%s'), V FROM `{db}`.t ORDER BY K IS NULL, K, V"
        ))
        .expect("rows")
}

fn datetimes(v: &[Option<&str>]) -> Series {
    let strings = Series::new("K".into(), v);
    strings
        .str()
        .expect("strings")
        .as_datetime(
            Some("%Y-%m-%d %H:%M:%S"),
            TimeUnit::Microseconds,
            false,
            false,
            None,
            &StringChunked::from_iter(std::iter::once("raise")),
        )
        .expect("datetimes")
        .into_series()
}

#[test]
fn a_datetime_key_replaces_its_instant_and_a_null_key_the_null_rows() {
    let mut sb = Sandbox::new("replace");
    let (db, t) = table(&mut sb);
    let df = DataFrame::new(vec![
        datetimes(&[Some("2024-08-12 10:00:00"), None]).into(),
        Series::new("V".into(), [10i32, 30]).into(),
    ])
    .expect("frame");
    let n = JdbcWrite::to(&settings(), t)
        .replace_matching("K")
        .save(&df)
        .expect("write");
    assert_eq!(n, 2);
    assert_eq!(
        rows(&db),
        vec![
            (Some("2024-08-12 10:00:00".into()), 10),
            (Some("2024-08-12 11:00:00".into()), 2),
            (Some("2024-08-13 10:00:00".into()), 4),
            (None, 30),
        ],
        "11:00 of the same day stays; the NULL row is replaced, not kept beside the new one"
    );
}

#[test]
fn a_date_key_replaces_its_whole_day() {
    let mut sb = Sandbox::new("replace");
    let (db, t) = table(&mut sb);
    let day = Series::new("K".into(), ["2024-08-12"])
        .cast(&DataType::Date)
        .expect("date");
    let df =
        DataFrame::new(vec![day.into(), Series::new("V".into(), [20i32]).into()]).expect("frame");
    JdbcWrite::to(&settings(), t)
        .replace_matching("K")
        .save(&df)
        .expect("write");
    assert_eq!(
        rows(&db),
        vec![
            (Some("2024-08-12 00:00:00".into()), 20),
            (Some("2024-08-13 10:00:00".into()), 4),
            (None, 3),
        ]
    );
}
