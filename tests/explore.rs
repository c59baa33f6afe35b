//! The exploring calls against the real servers: MariaDB values of odd types through the
//! strict converter, the read-only default and the row limit; Redis keys by namespace, empty
//! keys and values, a big key; a Kafka topic with 3 partitions and headers, its dead-letter
//! topic beside it, and a query checkpoint behind its topic.

use std::sync::atomic::{AtomicUsize, Ordering};

use bde_kit::explore::Explorer;
use bde_kit::io::{kafka, mariadb, redis as kit_redis};
use bde_kit::mysql::prelude::Queryable;
use bde_kit::polars::prelude::*;
use bde_kit::stream::checkpoint::{self, Checkpoint};
use bde_kit::Settings;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A name unique to this process and call.
fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// The servers of this run, with a checkpoint folder of the test's own.
fn settings(tag: &str) -> Settings {
    let mut s = Settings::from_env();
    s.checkpoint_dir = std::env::temp_dir().join(format!("bde_explore_cp_{tag}"));
    s
}

/// A database of the test's own, dropped on drop.
struct Db {
    settings: Settings,
    name: String,
}

impl Db {
    fn new(tables: &[&str]) -> Db {
        let name = unique("bde_test_explore");
        let settings = settings(&name);
        mariadb::execute(&settings, None, &format!("CREATE DATABASE `{name}`")).expect("db");
        for t in tables {
            mariadb::execute(&settings, Some(&name), t).expect("table");
        }
        Db { settings, name }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let _ = mariadb::execute(
            &self.settings,
            None,
            &format!("DROP DATABASE IF EXISTS `{}`", self.name),
        );
    }
}

fn text(df: &DataFrame, col: &str, row: usize) -> Option<String> {
    df.column(col)
        .expect("column")
        .get(row)
        .ok()
        .and_then(|v| v.get_str().map(str::to_string))
}

fn int(df: &DataFrame, col: &str, row: usize) -> Option<i64> {
    df.column(col)
        .expect("column")
        .cast(&DataType::Int64)
        .expect("cast")
        .get(row)
        .ok()
        .and_then(|v| v.extract::<i64>())
}

#[test]
fn sql_converts_odd_types_strictly_and_keeps_them_exact() {
    let db = Db::new(&[
        "CREATE TABLE odd (ID INT PRIMARY KEY, TINY TINYINT, BIG BIGINT UNSIGNED, \
         PRICE DECIMAL(20,4), RATIO DOUBLE, AT DATETIME(6), DAY DATE, SPAN TIME, DOC JSON, \
         RAW VARBINARY(8), FLAG BIT(1), NAME VARCHAR(100))",
    ]);
    mariadb::execute(
        &db.settings,
        Some(&db.name),
        "INSERT INTO odd VALUES \
         (1, -128, 18446744073709551615, 12345678901234.5678, 0.1, '2026-12-04 09:05:01.000250', \
          '2026-12-04', '-12:30:00', '{\"a\": [1, 2]}', 0xFF00FE, b'1', \
          '<script>x</script>\nEVCXR_END_CONTENT'), \
         (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    )
    .expect("rows");
    let ex = Explorer::new(&db.settings);
    let got = ex
        .sql(
            &db.name,
            "SELECT * FROM odd WHERE ID >= ? ORDER BY ID",
            (1,),
        )
        .expect("sql");
    let df = got.frame();
    assert_eq!(df.height(), 2);
    let types: Vec<String> = df.dtypes().iter().map(|t| t.to_string()).collect();
    assert_eq!(
        types,
        [
            "i32",
            "i32",
            "decimal[20,0]",
            "decimal[20,4]",
            "f64",
            "str",
            "str",
            "str",
            "str",
            "binary",
            "bool",
            "str"
        ]
    );
    let cell = |c: &str| df.column(c).expect("col").get(0).expect("row").to_string();
    assert_eq!(cell("BIG"), "18446744073709551615");
    assert_eq!(cell("PRICE"), "12345678901234.5678");
    assert_eq!(
        text(&df, "AT", 0).as_deref(),
        Some("2026-12-04 09:05:01.000250")
    );
    assert_eq!(text(&df, "DOC", 0).as_deref(), Some("{\"a\": [1, 2]}"));
    assert_eq!(int(&df, "TINY", 0), Some(-128));
    assert_eq!(
        df.column("RAW")
            .expect("raw")
            .binary()
            .expect("binary")
            .get(0),
        Some(&[0xFF, 0x00, 0xFE][..])
    );
    assert_eq!(
        df.column("FLAG")
            .expect("flag")
            .bool()
            .expect("bool")
            .get(0),
        Some(true)
    );
    for c in df.get_columns().iter().skip(1) {
        assert_eq!(
            c.null_count(),
            1,
            "row 2 is NULL in {} (and row 1 is not)",
            c.name()
        );
    }
    let html = got.to_html();
    assert!(
        !html.contains('\n'),
        "one line: no value can end evcxr's block"
    );
    assert!(html.contains("&lt;script&gt;"), "markup escaped");
}

#[test]
fn sql_refuses_a_write_unless_it_is_called_for() {
    let db = Db::new(&["CREATE TABLE t (ID INT PRIMARY KEY)"]);
    mariadb::execute(
        &db.settings,
        Some(&db.name),
        "INSERT INTO t VALUES (1), (2)",
    )
    .expect("rows");
    let ex = Explorer::new(&db.settings);
    let count = |ex: &Explorer| {
        int(
            &ex.sql(&db.name, "SELECT COUNT(*) AS n FROM t", ())
                .expect("count")
                .frame(),
            "n",
            0,
        )
    };
    for write in [
        "DELETE FROM t",
        "/* SELECT */ DROP TABLE t",
        "UPDATE t SET ID = 3",
    ] {
        let e = ex.sql(&db.name, write, ()).expect_err(write).to_string();
        assert!(e.contains("MariaDB") && e.contains("sql_write"), "{e}");
        assert!(
            e.contains(&Settings::address_of(&db.settings.mariadb)),
            "{e}"
        );
    }
    assert_eq!(count(&ex), Some(2), "nothing written");
    let done = ex
        .sql_write(&db.name, "DELETE FROM t WHERE ID = ?", (1,))
        .expect("explicit write");
    assert_eq!(int(&done.frame(), "rows affected", 0), Some(1));
    assert_eq!(count(&ex), Some(1));
}

#[test]
fn sql_reads_at_most_the_limit_and_says_so() {
    let db = Db::new(&["CREATE TABLE t (ID INT PRIMARY KEY)"]);
    let values: Vec<String> = (1..=30).map(|i| format!("({i})")).collect();
    mariadb::execute(
        &db.settings,
        Some(&db.name),
        &format!("INSERT INTO t VALUES {}", values.join(",")),
    )
    .expect("rows");
    let ex = Explorer::new(&db.settings);
    let cut = ex
        .clone()
        .limit(10)
        .sql(&db.name, "SELECT ID FROM t ORDER BY ID", ())
        .expect("cut");
    assert_eq!(cut.height(), 10);
    assert!(
        cut.notes
            .iter()
            .any(|n| n.contains("showing 10 of more rows")),
        "{:?}",
        cut.notes
    );
    let all = ex
        .clone()
        .limit(30)
        .sql(&db.name, "SELECT ID FROM t", ())
        .expect("all");
    assert_eq!(all.height(), 30);
    assert!(
        all.notes.is_empty(),
        "30 rows fit a limit of 30: {:?}",
        all.notes
    );
    // the session's limit is back to the default for the next user of the connection
    let mut c = mariadb::conn(&db.settings, Some(&db.name)).expect("conn");
    let n: Option<i64> = c
        .query_first("SELECT COUNT(*) FROM (SELECT ID FROM t) x")
        .expect("n");
    assert_eq!(n, Some(30));
}

#[test]
fn tables_and_describe_show_rows_columns_keys_and_indexes() {
    let db = Db::new(&[
        "CREATE TABLE visits (ID BIGINT AUTO_INCREMENT PRIMARY KEY, COUNTRY VARCHAR(20) NOT NULL, \
         DURATION INT DEFAULT 0, UNIQUE KEY by_country (COUNTRY, DURATION)) ENGINE=InnoDB",
        "CREATE TABLE empty_one (A INT)",
    ]);
    mariadb::execute(
        &db.settings,
        Some(&db.name),
        "INSERT INTO visits (COUNTRY, DURATION) VALUES ('Brazil', 3), ('India', 5), ('USA', 7)",
    )
    .expect("rows");
    let ex = Explorer::new(&db.settings);
    let t = ex.tables_in(&db.name).expect("tables").frame();
    assert_eq!(text(&t, "table", 0).as_deref(), Some("empty_one"));
    assert_eq!(text(&t, "table", 1).as_deref(), Some("visits"));
    assert_eq!((int(&t, "rows", 0), int(&t, "rows", 1)), (Some(0), Some(3)));
    assert_eq!(text(&t, "engine", 1).as_deref(), Some("InnoDB"));
    assert!(int(&t, "bytes", 1).is_some_and(|b| b > 0));
    let all = ex.tables().expect("all tables").frame();
    assert!(
        all.column("schema")
            .expect("schema")
            .str()
            .expect("str")
            .into_iter()
            .any(|s| s == Some(db.name.as_str())),
        "tables() lists the test's database"
    );
    let d = ex
        .describe(&format!("{}.visits", db.name))
        .expect("describe");
    let cols = d.frame();
    assert_eq!(text(&cols, "column", 1).as_deref(), Some("COUNTRY"));
    assert_eq!(text(&cols, "type", 1).as_deref(), Some("varchar(20)"));
    assert_eq!(text(&cols, "key", 0).as_deref(), Some("PRI"));
    assert_eq!(text(&cols, "extra", 0).as_deref(), Some("auto_increment"));
    let idx = d.table("indexes").expect("indexes");
    assert_eq!(text(idx, "index", 0).as_deref(), Some("PRIMARY"));
    assert_eq!(
        text(idx, "columns", 1).as_deref(),
        Some("COUNTRY, DURATION")
    );
    let missing = ex
        .describe(&format!("{}.nothing", db.name))
        .expect_err("no table")
        .to_string();
    assert!(
        missing.contains("MariaDB") && missing.contains("Explorer::tables()"),
        "{missing}"
    );
}

/// Keys of the test's own under `bde_test:<tag>:`, deleted on drop.
struct Keys {
    settings: Settings,
    prefix: String,
}

impl Keys {
    fn new() -> Keys {
        let tag = unique("explore");
        Keys {
            settings: settings(&tag),
            prefix: format!("bde_test:{tag}"),
        }
    }
    fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.prefix)
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        if let Ok(keys) = kit_redis::keys(&self.settings, &format!("{}*", self.prefix)) {
            let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
            let _ = kit_redis::delete(&self.settings, &refs);
        }
    }
}

#[test]
fn redis_keys_by_namespace_with_type_ttl_memory_and_length_and_empty_ones() {
    use bde_kit::redis::Commands;
    let k = Keys::new();
    let mut con = kit_redis::connect(&k.settings).expect("redis");
    let _: () = con.zadd(k.key("scores:z"), "", 2.5).expect("zadd");
    let _: () = con.zadd(k.key("scores:z"), "Brazil", 7.0).expect("zadd");
    let _: () = con.hset(k.key("h"), "", "").expect("hset");
    let _: () = con.rpush(k.key("l"), &["a", "b", "c"]).expect("rpush");
    let _: () = con.sadd(k.key("s"), "x").expect("sadd");
    let _: () = con.set_ex(k.key("empty"), "", 600).expect("set");
    let _: () = con.set(k.key(""), "key ends in a colon").expect("set");
    let _: String = bde_kit::redis::cmd("XADD")
        .arg(k.key("events"))
        .arg("*")
        .arg("who")
        .arg("<b>me</b>")
        .query(&mut con)
        .expect("xadd");
    let got = Explorer::new(&k.settings)
        .redis_keys(&format!("{}*", k.prefix))
        .expect("keys");
    let df = got.frame();
    let rows: Vec<(String, String, String, Option<i64>)> = (0..df.height())
        .map(|i| {
            (
                text(&df, "namespace", i).unwrap_or_default(),
                text(&df, "key", i).unwrap_or_default(),
                text(&df, "type", i).unwrap_or_default(),
                int(&df, "length", i),
            )
        })
        .collect();
    let p = &k.prefix;
    assert_eq!(
        rows,
        vec![
            (p.clone(), k.key(""), "string".into(), Some(19)),
            (p.clone(), k.key("empty"), "string".into(), Some(0)),
            (p.clone(), k.key("events"), "stream".into(), Some(1)),
            (p.clone(), k.key("h"), "hash".into(), Some(1)),
            (p.clone(), k.key("l"), "list".into(), Some(3)),
            (p.clone(), k.key("s"), "set".into(), Some(1)),
            (
                format!("{p}:scores"),
                k.key("scores:z"),
                "zset".into(),
                Some(2)
            ),
        ]
    );
    let ttl = int(&df, "ttl_s", 1).expect("the empty string expires");
    assert!((1..=600).contains(&ttl), "{ttl}");
    assert_eq!(int(&df, "ttl_s", 0), None, "no expiry is null");
    assert!((0..df.height()).all(|i| int(&df, "memory_bytes", i).is_some_and(|m| m > 0)));
    let spaces = got.table("namespaces").expect("namespaces");
    assert_eq!(int(spaces, "keys", 0), Some(6));
    assert_eq!(int(spaces, "keys", 1), Some(1));
    let hash = Explorer::new(&k.settings)
        .redis_show(&k.key("h"))
        .expect("hash")
        .frame();
    assert_eq!(
        (text(&hash, "field", 0), text(&hash, "value", 0)),
        (Some(String::new()), Some(String::new()))
    );
    let zset = Explorer::new(&k.settings)
        .redis_show(&k.key("scores:z"))
        .expect("zset");
    let z = zset.frame();
    assert_eq!(
        text(&z, "member", 0).as_deref(),
        Some("Brazil"),
        "highest score first"
    );
    assert_eq!(text(&z, "member", 1).as_deref(), Some(""));
    assert!(
        zset.notes.iter().any(|n| n == "total of the scores: 9.5"),
        "{:?}",
        zset.notes
    );
    let stream = Explorer::new(&k.settings)
        .redis_show(&k.key("events"))
        .expect("stream");
    assert_eq!(
        text(&stream.frame(), "fields", 0).as_deref(),
        Some("who=<b>me</b>")
    );
    assert!(stream.to_html().contains("who=&lt;b&gt;me&lt;/b&gt;"));
    let missing = Explorer::new(&k.settings)
        .redis_show(&k.key("nothing"))
        .expect_err("missing")
        .to_string();
    assert!(
        missing.contains("Redis") && missing.contains("redis_keys"),
        "{missing}"
    );
}

#[test]
fn a_big_key_is_shown_bounded_and_says_so() {
    let k = Keys::new();
    let mut con = kit_redis::connect(&k.settings).expect("redis");
    let big = k.key("big");
    let mut cmd = bde_kit::redis::cmd("ZADD");
    cmd.arg(&big);
    for i in 0..5000 {
        cmd.arg(i).arg(format!("m{i:04}"));
    }
    let _: i64 = cmd.query(&mut con).expect("zadd 5000");
    let long = k.key("long");
    let _: () = bde_kit::redis::Commands::set(&mut con, &long, "x".repeat(200_000)).expect("set");
    let ex = Explorer::new(&k.settings).limit(100);
    let shown = ex.redis_show(&big).expect("big");
    let df = shown.frame();
    assert_eq!(df.height(), 100);
    assert_eq!(text(&df, "member", 0).as_deref(), Some("m4999"));
    assert_eq!(text(&df, "member", 99).as_deref(), Some("m4900"));
    assert!(
        shown
            .notes
            .iter()
            .any(|n| n.contains("showing 100 of 5000 members")),
        "{:?}",
        shown.notes
    );
    let s = ex.redis_show(&long).expect("long string");
    assert_eq!(int(&s.frame(), "bytes", 0), Some(200_000));
    assert_eq!(
        text(&s.frame(), "value", 0).map(|v| v.len()),
        Some(64 * 1024)
    );
    assert!(
        s.notes
            .iter()
            .any(|n| n.contains("first 65536 of 200000 bytes")),
        "{:?}",
        s.notes
    );
    let keys = ex
        .redis_keys(&format!("{}*", k.prefix))
        .expect("keys")
        .frame();
    assert_eq!(int(&keys, "length", 0), Some(5000));
}

/// Topics of the test's own, deleted on drop.
struct Topics {
    settings: Settings,
    names: Vec<String>,
}

impl Topics {
    fn new(tag: &str) -> Topics {
        Topics {
            settings: settings(tag),
            names: Vec::new(),
        }
    }
    fn create(&mut self, name: &str, partitions: i32) -> String {
        kafka::create_topics(&self.settings, &[name], partitions).expect("topic");
        self.names.push(name.to_string());
        name.to_string()
    }
}

impl Drop for Topics {
    fn drop(&mut self) {
        let names: Vec<&str> = self.names.iter().map(String::as_str).collect();
        let _ = kafka::delete_topics(&self.settings, &names);
        let _ = std::fs::remove_dir_all(&self.settings.checkpoint_dir);
    }
}

fn produce_30(t: &Topics, topic: &str) {
    let records = (0..30)
        .map(|i| {
            (
                Some(format!("k{i}")),
                format!("{{\"n\": {i}}}"),
                format!("trace-{i}"),
            )
        })
        .collect();
    kafka::produce_all_with_header(&t.settings, topic, "trace", records).expect("produce");
}

#[test]
fn topics_and_peek_show_three_partitions_headers_and_the_dead_letters_beside() {
    let tag = unique("explore_kafka");
    let mut t = Topics::new(&tag);
    let topic = t.create(&format!("bde_test.{tag}"), 3);
    let dlq = t.create(&format!("bde_test.{tag}.dlq"), 1);
    produce_30(&t, &topic);
    kafka::produce_all(&t.settings, &dlq, vec![(None, "not json".into())]).expect("dead letter");
    let ex = Explorer::new(&t.settings);
    let topics = ex.topics().expect("topics").frame();
    let names: Vec<Option<&str>> = topics
        .column("topic")
        .expect("t")
        .str()
        .expect("s")
        .into_iter()
        .collect();
    let at = names
        .iter()
        .position(|n| *n == Some(topic.as_str()))
        .expect("listed");
    assert_eq!(
        names.get(at + 1).copied().flatten(),
        Some(dlq.as_str()),
        "dlq right after"
    );
    assert_eq!(int(&topics, "partitions", at), Some(3));
    assert_eq!(int(&topics, "records", at), Some(30));
    assert_eq!(
        text(&topics, "dead letters of", at + 1).as_deref(),
        Some(topic.as_str())
    );
    let marks = kafka::watermarks(&t.settings, &topic).expect("marks");
    let newest = ex.peek(&topic, 5).expect("peek").frame();
    assert_eq!(newest.height(), 5);
    for i in 0..5 {
        let p = int(&newest, "partition", i).expect("p") as i32;
        let o = int(&newest, "offset", i).expect("o");
        let hi = marks.iter().find(|m| m.0 == p).expect("partition").2;
        assert!(
            o >= hi - 5 && o < hi,
            "among the newest of partition {p}: {o} of {hi}"
        );
        let h = text(&newest, "headers", i).expect("headers");
        assert!(h.starts_with("trace=trace-"), "{h}");
        assert!(text(&newest, "timestamp", i).is_some_and(|ts| ts.starts_with("20")));
    }
    let all = ex.peek_from_beginning(&topic, 100).expect("all").frame();
    assert_eq!(all.height(), 30);
    let mut traces: Vec<String> = (0..30)
        .map(|i| text(&all, "headers", i).expect("h"))
        .collect();
    traces.sort();
    let mut expected: Vec<String> = (0..30).map(|i| format!("trace=trace-{i}")).collect();
    expected.sort();
    assert_eq!(traces, expected, "every record once, with its header");
    let parts: std::collections::BTreeSet<i64> =
        (0..30).filter_map(|i| int(&all, "partition", i)).collect();
    assert_eq!(parts.len(), 3, "records of all three partitions");
}

#[test]
fn lag_shows_a_query_checkpoint_behind_its_topic() {
    let tag = unique("explore_lag");
    let mut t = Topics::new(&tag);
    let topic = t.create(&format!("bde_test.{tag}"), 3);
    produce_30(&t, &topic);
    let marks = kafka::watermarks(&t.settings, &topic).expect("marks");
    let root = t.settings.checkpoint_dir.clone();
    for (query, behind) in [("plain-query", 2), ("odd query/1", 0)] {
        let mut cp = Checkpoint {
            query: query.into(),
            next_batch: 4,
            last_batch_time_ms: 1_764_806_400_000,
            ..Default::default()
        };
        for (p, _, hi) in &marks {
            cp.offsets
                .entry(topic.clone())
                .or_default()
                .insert(*p, (hi - behind).max(0));
        }
        cp.save(&checkpoint::dir_for(&root, query)).expect("save");
    }
    let running = checkpoint::Heartbeat::start(&checkpoint::dir_for(&root, "plain-query"));
    let lag = Explorer::new(&t.settings).lag().expect("lag");
    drop(running);
    let df = lag.frame();
    assert_eq!(df.height(), 6, "3 partitions of 2 queries");
    for i in 0..6 {
        let q = text(&df, "query", i).expect("q");
        let p = int(&df, "partition", i).expect("p") as i32;
        let hi = marks.iter().find(|m| m.0 == p).expect("partition").2;
        let expected = if q == "plain-query" { 2.min(hi) } else { 0 };
        assert_eq!(int(&df, "end offset", i), Some(hi));
        assert_eq!(int(&df, "behind", i), Some(expected), "{q} p{p}");
        let alive = df.column("running").expect("r").bool().expect("b").get(i);
        assert_eq!(alive, Some(q == "plain-query"), "{q}");
        assert_eq!(
            text(&df, "last batch (UTC)", i).as_deref(),
            Some("2025-12-04 00:00:00.000")
        );
    }
    assert_eq!(
        text(&df, "query", 0).as_deref(),
        Some("odd query/1"),
        "sorted by query"
    );
}

#[test]
fn errors_name_the_service_the_address_and_the_fix() {
    let mut s = Settings::from_env();
    s.redis = "redis://127.0.0.1:1".into();
    s.mariadb = "mysql://spark:secret-pw@127.0.0.1:1".into();
    let ex = Explorer::new(&s);
    for e in [
        ex.redis_keys("*").expect_err("no redis").to_string(),
        ex.tables().expect_err("no mariadb").to_string(),
    ] {
        assert!(e.contains("127.0.0.1:1"), "{e}");
        assert!(e.contains("kernel/services.sh up"), "{e}");
        assert!(!e.contains("secret-pw"), "{e}");
    }
}

#[test]
fn groups_show_the_offsets_a_group_committed_and_how_far_behind() {
    use bde_kit::rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
    use bde_kit::rdkafka::{Offset, TopicPartitionList};
    let tag = unique("explore_groups");
    let mut t = Topics::new(&tag);
    let topic = t.create(&format!("bde_test.{tag}"), 3);
    produce_30(&t, &topic);
    let marks = kafka::watermarks(&t.settings, &topic).expect("marks");
    let group = format!("bde_test_group_{tag}");
    let c: BaseConsumer = kafka::client_config(&t.settings)
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for (p, lo, _) in &marks {
        tpl.add_partition_offset(&topic, *p, Offset::Offset(*lo))
            .expect("tpl");
    }
    c.commit(&tpl, CommitMode::Sync).expect("commit");
    let got = Explorer::new(&t.settings).groups().expect("groups");
    let committed = got.table("committed offsets").expect("committed");
    let mine: Vec<usize> = (0..committed.height())
        .filter(|i| text(committed, "group", *i).as_deref() == Some(group.as_str()))
        .collect();
    assert_eq!(mine.len(), 3, "one row per partition");
    let behind: i64 = mine
        .iter()
        .filter_map(|i| int(committed, "behind", *i))
        .sum();
    assert_eq!(behind, 30, "committed at the start: every record behind");
}
