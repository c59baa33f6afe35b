//! Notebook 1's setup against the real MariaDB and Kafka, on prefixed databases and topics:
//! the course's DDL, per-object idempotency, grants, topics and the final report.

#[path = "batch_support/mod.rs"]
mod batch_support;

use batch_support::{admin, settings, unique, Sandbox};
use bde_kit::course::setup::{self, SetupPlan};
use bde_kit::io::kafka;
use bde_kit::mysql::prelude::Queryable;

fn columns(db: &str, table: &str) -> Vec<(String, String, String, Option<String>)> {
    let mut c = admin();
    c.exec(
        "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT FROM information_schema.columns \
         WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
        (db, table),
    )
    .expect("columns")
}

fn plan_for(sb: &mut Sandbox) -> SetupPlan {
    let plan = SetupPlan::prefixed(&unique("setup"));
    for (db, _) in plan.databases() {
        sb.adopt(&db);
    }
    plan
}

#[test]
fn setup_creates_the_course_tables_and_is_idempotent() {
    let mut sb = Sandbox::new("setup");
    let plan = plan_for(&mut sb);
    let s = settings();
    let first = setup::setup_mariadb(&s, &plan).expect("setup");
    assert_eq!(first.0.len(), 3);
    assert!(first.0.iter().all(|o| o.status == "created"), "{first}");

    let w = columns(&plan.warehouse_db, "item_stock");
    let names: Vec<&str> = w.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "ID",
            "STOCK_DATE",
            "WAREHOUSE_ID",
            "ITEM_NAME",
            "OPENING_STOCK",
            "RECEIPTS",
            "ISSUES",
            "UNIT_VALUE"
        ]
    );
    assert_eq!(w[1].1, "datetime");
    assert_eq!(w[2].1, "varchar(45)");
    assert_eq!(w[7].1, "decimal(10,2)");
    assert_eq!(w[4].3.as_deref(), Some("0"));
    let g = columns(&plan.global_db, "item_stock");
    let names: Vec<&str> = g.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "ID",
            "STOCK_DATE",
            "ITEM_NAME",
            "TOTAL_REC",
            "OPENING_STOCK",
            "RECEIPTS",
            "ISSUES",
            "CLOSING_STOCK",
            "CLOSING_VALUE"
        ]
    );
    assert_eq!(g[8].1, "decimal(10,2)");
    let v = columns(&plan.website_db, "visit_stats");
    let names: Vec<&str> = v.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(
        names,
        ["ID", "INTERVAL_TIMESTAMP", "LAST_ACTION", "DURATION"]
    );
    assert_eq!(v[3].2, "YES");
    let mut c = admin();
    let idx: Vec<String> = c
        .exec("SELECT INDEX_NAME FROM information_schema.statistics WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'item_stock' ORDER BY INDEX_NAME", (plan.warehouse_db.as_str(),))
        .expect("indexes");
    assert_eq!(idx, ["PRIMARY", "STOCK_DATE"]);

    // The course user can use the new databases.
    let mut spark = bde_kit::batch::worker_conn(&s.mariadb).expect("spark");
    spark
        .query_drop(format!(
            "INSERT INTO `{}`.visit_stats (LAST_ACTION, DURATION) VALUES ('FAQ', 20)",
            plan.website_db
        ))
        .expect("insert as spark");

    let second = setup::setup_mariadb(&s, &plan).expect("setup again");
    assert!(second.0.iter().all(|o| o.status == "exists"), "{second}");
}

#[test]
fn a_database_without_its_table_gets_the_table() {
    let mut sb = Sandbox::new("setup");
    let plan = plan_for(&mut sb);
    let mut c = admin();
    c.query_drop(format!("CREATE DATABASE `{}`", plan.global_db))
        .expect("bare database");
    let out = setup::setup_mariadb(&settings(), &plan).expect("setup");
    assert_eq!(
        out.status_of(&format!("{}.item_stock", plan.global_db)),
        Some("table created")
    );
    assert_eq!(
        out.status_of(&format!("{}.item_stock", plan.warehouse_db)),
        Some("created")
    );
    assert_eq!(columns(&plan.global_db, "item_stock").len(), 9);
}

#[test]
fn topics_folder_and_report() {
    let mut sb = Sandbox::new("setup");
    let plan = plan_for(&mut sb).with_partitions(2);
    let mut s = settings();
    s.data_dir = sb.dir.join("raw_data");
    let topics: Vec<&str> = plan.topics.iter().map(String::as_str).collect();
    let created = setup::setup_kafka(&s, &plan).expect("topics");
    assert!(
        created.0.iter().all(|o| o.status.starts_with("created")),
        "{created}"
    );
    for t in &topics {
        assert_eq!(
            kafka::partitions(&s, t).expect("partitions").len(),
            2,
            "{t}"
        );
    }
    let again = setup::setup_kafka(&s, &plan).expect("topics again");
    assert!(again.0.iter().all(|o| o.status == "exists"), "{again}");

    let f = setup::setup_raw_data(&s).expect("folder");
    assert_eq!(f.0[0].status, "created");
    assert!(s.data_dir.is_dir());
    assert_eq!(
        setup::setup_raw_data(&s).expect("folder").0[0].status,
        "exists"
    );

    setup::setup_mariadb(&s, &plan).expect("databases");
    let r = setup::report(&s, &plan);
    let text = r.to_string();
    assert!(r.all_ready(), "{text}");
    assert!(text.contains("2 partition(s)"), "{text}");
    assert!(r.table().to_html().contains(&plan.warehouse_db));
    let _ = kafka::delete_topics(&s, &topics);

    let env = setup::environment(&s);
    let e = env.to_string();
    assert!(e.contains("rustc") && e.contains("polars"), "{e}");
}
