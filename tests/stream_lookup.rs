//! Stream-static lookup join against a real MariaDB table (the in-memory source feeds it): the
//! table is read at the start and again by the first batch at least `refresh` after the last
//! read (processing time of an injected clock), and read anew by a restarted query.

#[path = "stream_util/mod.rs"]
mod stream_util;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bde_kit::stream::dataflow::MariaDbLookup;
use bde_kit::stream::sink::foreach::foreach_batch;
use bde_kit::stream::{ManualClock, MemorySource, Query, Stream, Trigger};
use stream_util::*;

type Joined = (String, Option<String>);

fn wait_for(seen: &Arc<Mutex<Vec<Joined>>>, n: usize) -> Vec<Joined> {
    let t = Instant::now();
    while seen.lock().expect("lock").len() < n {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the batch did not come"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::mem::take(&mut *seen.lock().expect("lock"))
}

#[test]
fn a_lookup_joins_a_snapshot_refreshed_on_its_rule() {
    let mut f = Fixture::new("lookup");
    let db = f.database();
    let sql = |s: &str| bde_kit::io::mariadb::execute(&f.settings, Some(&db), s).expect(s);
    sql("CREATE TABLE regions (country VARCHAR(45) PRIMARY KEY, region VARCHAR(45))");
    sql("INSERT INTO regions VALUES ('USA', 'Americas'), ('India', 'Asia'), ('Chad', NULL)");
    let source = MemorySource::new(&format!("lookup-{}", f.tag));
    let clock = ManualClock::new(100_000);
    let seen: Arc<Mutex<Vec<Joined>>> = Arc::default();
    let start = |left: bool| {
        let seen = seen.clone();
        let countries = Stream::<String>::read(source.clone());
        let joined = countries.lookup(
            MariaDbLookup::new(&db, "regions", "country").refresh(Duration::from_secs(10)),
            |c| c.clone(),
            move |c, r| {
                let region = r.and_then(|r| r.get("region").cloned());
                (left || r.is_some()).then(|| (c.clone(), region))
            },
        );
        Query::new(&format!("lookup-{}", f.tag))
            .settings(f.settings.clone())
            .clock(clock.clone())
            .trigger(Trigger::every(Duration::from_millis(20)))
            .quiet(true)
            .start([
                joined.write(foreach_batch("joined", move |_, rows: &[Joined]| {
                    seen.lock().expect("lock").extend_from_slice(rows);
                    Ok(())
                })),
            ])
            .expect("start")
    };
    let q = start(true);
    source.push("USA");
    source.push("Peru");
    source.push("Chad");
    assert_eq!(
        wait_for(&seen, 3),
        [
            ("USA".to_string(), Some("Americas".to_string())),
            ("Peru".to_string(), None),
            ("Chad".to_string(), None),
        ],
        "a left join: no match and a NULL column both give None"
    );
    sql("UPDATE regions SET region = 'North America' WHERE country = 'USA'");
    clock.set(109_999);
    source.push("USA");
    assert_eq!(
        wait_for(&seen, 1),
        [("USA".to_string(), Some("Americas".to_string()))],
        "9.999 s after the read: the same snapshot"
    );
    clock.set(110_000);
    source.push("USA");
    assert_eq!(
        wait_for(&seen, 1),
        [("USA".to_string(), Some("North America".to_string()))],
        "10 s after the read: read again"
    );
    q.stop().expect("stop");
    // a restarted query reads the table when it starts; an inner join drops the unmatched rows
    sql("INSERT INTO regions VALUES ('Peru', 'Americas')");
    let q = start(false);
    source.push("Peru");
    source.push("Mali");
    source.push("India");
    assert_eq!(
        wait_for(&seen, 2),
        [
            ("Peru".to_string(), Some("Americas".to_string())),
            ("India".to_string(), Some("Asia".to_string())),
        ]
    );
    q.stop().expect("stop");
}

#[test]
fn a_missing_key_column_fails_the_start_with_the_columns() {
    let mut f = Fixture::new("lookup_bad");
    let db = f.database();
    bde_kit::io::mariadb::execute(
        &f.settings,
        Some(&db),
        "CREATE TABLE regions (country VARCHAR(45), region VARCHAR(45))",
    )
    .expect("create");
    bde_kit::io::mariadb::execute(
        &f.settings,
        Some(&db),
        "INSERT INTO regions VALUES ('USA', 'Americas')",
    )
    .expect("insert");
    let q = Query::new(&format!("lookup-bad-{}", f.tag))
        .settings(f.settings.clone())
        .trigger(Trigger::AvailableNow)
        .quiet(true)
        .start([Stream::<String>::read(MemorySource::new("none"))
            .lookup(
                MariaDbLookup::new(&db, "regions", "iso"),
                |c| c.clone(),
                |c, _| Some(c.clone()),
            )
            .write(foreach_batch("none", |_, _: &[String]| Ok(())))])
        .expect("start returns at once");
    assert!(q.await_termination(Duration::from_secs(30)).expect("wait"));
    let status = q.status().to_string();
    assert!(
        status.contains("no column iso") && status.contains("country, region"),
        "{status}"
    );
}
