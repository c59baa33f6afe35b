//! Rows the server refuses that no sink `check` models (a CHECK constraint, a duplicate key
//! under `Merge::Insert`): after the retries the engine bisects the batch down to those rows,
//! dead-letters them with the server's error and goes on. A server that is down is not a poison
//! row (no bisecting, no dead letter); a sink that cannot try rows apart names the way out
//! (`dead_letter_refused_batches`). And a replay leaves out exactly the rows the first run
//! refused, even after a column was widened between the crash and the restart (the refused
//! positions are in the write-ahead).
//!
//! Against the real Kafka and MariaDB; the crash test runs this test binary again as a child
//! (`refused_crash_child`) that aborts at a named crash point (`BDE_CRASH_AT`).

#[path = "stream_util/mod.rs"]
mod stream_util;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::process::ExitStatusExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bde_kit::course::visit::Visit;
use bde_kit::error::{Error, Service};
use bde_kit::io::{kafka, mariadb};
use bde_kit::mysql::prelude::Queryable;
use bde_kit::mysql::Value;
use bde_kit::stream::sink::{BatchInfo, KafkaSink, MariaDbInsert, MemorySink, Sink};
use bde_kit::stream::{DeadLetter, KafkaSource, Query, Start, Status, Stream, Trigger};
use bde_kit::Settings;
use stream_util::*;

/// The dead letters now in the dead-letter topic of `topic`, by offset.
fn letters(settings: &Settings, topic: &str) -> Vec<DeadLetter> {
    let mut l: Vec<DeadLetter> = kafka::read_all(
        settings,
        &DeadLetter::topic_for(topic),
        Duration::from_secs(20),
    )
    .unwrap_or_default()
    .into_iter()
    .map(|(_, v)| serde_json::from_str(&v).expect("envelope"))
    .collect();
    l.sort_by_key(|l| l.offset);
    l
}

fn sql(settings: &Settings, statement: &str) {
    mariadb::execute(settings, None, statement).expect(statement);
}

fn lines_of(settings: &Settings, query: &str) -> Vec<String> {
    let mut c = mariadb::conn(settings, None).expect("conn");
    let mut rows: Vec<String> = c.query(query).expect(query);
    rows.sort();
    rows
}

fn produce_lines(settings: &Settings, topic: &str, lines: &[String]) {
    kafka::produce_all(
        settings,
        topic,
        lines.iter().map(|l| (None, l.clone())).collect(),
    )
    .expect("produce");
}

fn lines_stream(topic: &str) -> Stream<String> {
    Stream::<String>::read(
        KafkaSource::new(topic)
            .starting(Start::Earliest)
            .max_records(10),
    )
}

/// `ALTER TABLE … ADD CHECK (DURATION < 1000)` and one visit with 5000 among 40: that visit is
/// the one dead letter, carrying the server's error; every other visit is written once and the
/// batches after it run.
#[test]
fn a_row_a_check_constraint_refuses_is_dead_lettered_with_the_servers_error() {
    let mut f = Fixture::new("refchk");
    let topic = f.topic("visits");
    let db = f.database();
    sql(
        &f.settings,
        &format!("CREATE TABLE `{db}`.checked (COUNTRY VARCHAR(60), LAST_ACTION VARCHAR(45), VISIT_DATE VARCHAR(19), DURATION INT) ENGINE=InnoDB"),
    );
    sql(
        &f.settings,
        &format!("ALTER TABLE `{db}`.checked ADD CONSTRAINT short_visits CHECK (DURATION < 1000)"),
    );
    let mut vs = visits(40);
    for (i, v) in vs.iter_mut().enumerate() {
        v.duration = (i as i64 * 37) % 900 + 1;
    }
    vs[17].duration = 5000;
    produce(&f.settings, &topic, &vs);

    let visits = Stream::<Visit>::read(
        KafkaSource::new(&topic)
            .starting(Start::Earliest)
            .max_records(10),
    );
    let q = Query::new(&format!("refchk-{}", f.tag))
        .settings(f.settings.clone())
        .trigger(Trigger::AvailableNow)
        .quiet(true)
        .start([visits.write(MariaDbInsert::new(
            &db,
            "checked",
            &["COUNTRY", "LAST_ACTION", "VISIT_DATE", "DURATION"],
            |v: &Visit| {
                vec![
                    Value::from(v.country.as_str()),
                    Value::from(v.last_action.as_str()),
                    Value::from(v.visit_date.format("%Y-%m-%d %H:%M:%S").to_string()),
                    Value::from(v.duration),
                ]
            },
        ))])
        .expect("start");
    assert!(q.await_termination(Duration::from_secs(180)).expect("wait"));
    let sum = q.summary();
    assert_eq!(
        sum.status,
        Status::Stopped,
        "the refused row does not stop the query"
    );
    assert_eq!(sum.total_dead_letters, 1);
    assert_eq!(sum.total_rows, 40, "every batch ran");

    let l = letters(&f.settings, &topic);
    assert_eq!(l.len(), 1, "{l:?}");
    assert_eq!(l[0].offset, 17);
    assert!(
        l[0].reason.contains("short_visits") && l[0].reason.contains("4025"),
        "the server's error: {}",
        l[0].reason
    );
    let line = |v: &Visit| {
        format!(
            "{}|{}|{}|{}",
            v.country,
            v.last_action,
            v.visit_date.format("%Y-%m-%d %H:%M:%S"),
            v.duration
        )
    };
    let mut want: Vec<String> = vs.iter().filter(|v| v.duration < 1000).map(line).collect();
    want.sort();
    assert_eq!(
        lines_of(
            &f.settings,
            &format!("SELECT CONCAT_WS('|', COUNTRY, LAST_ACTION, VISIT_DATE, DURATION) FROM `{db}`.checked")
        ),
        want,
        "every other visit written once"
    );
}

/// Under `Merge::Insert`, a key already in the table and a key twice within one batch: each
/// duplicate is a dead letter with the server's "Duplicate entry", the first occurrence stays.
#[test]
fn duplicate_keys_under_insert_are_dead_lettered_even_within_one_batch() {
    let mut f = Fixture::new("refdup");
    let topic = f.topic("keys");
    let db = f.database();
    sql(
        &f.settings,
        &format!("CREATE TABLE `{db}`.keyed (K VARCHAR(20) NOT NULL PRIMARY KEY) ENGINE=InnoDB"),
    );
    sql(
        &f.settings,
        &format!("INSERT INTO `{db}`.keyed VALUES ('old')"),
    );
    let mut lines: Vec<String> = (0..30).map(|i| format!("k{i:02}")).collect();
    lines[4] = "dup".into(); // batch 0
    lines[8] = "dup".into(); // batch 0 again
    lines[15] = "old".into(); // batch 1, in the table already
    lines[25] = "dup".into(); // batch 2
    produce_lines(&f.settings, &topic, &lines);
    let q = Query::new(&format!("refdup-{}", f.tag))
        .settings(f.settings.clone())
        .trigger(Trigger::AvailableNow)
        .quiet(true)
        .start([lines_stream(&topic).write(MariaDbInsert::new(
            &db,
            "keyed",
            &["K"],
            |l: &String| vec![Value::from(l.as_str())],
        ))])
        .expect("start");
    assert!(q.await_termination(Duration::from_secs(180)).expect("wait"));
    let sum = q.summary();
    assert_eq!(sum.status, Status::Stopped);
    let l = letters(&f.settings, &topic);
    assert_eq!(
        l.iter().map(|l| l.offset).collect::<Vec<_>>(),
        vec![8, 15, 25],
        "{l:?}"
    );
    assert!(
        l.iter().all(|l| l.reason.contains("Duplicate entry")),
        "{l:?}"
    );
    let mut want: Vec<String> = lines.clone();
    want.push("old".into());
    want.sort();
    want.dedup();
    assert_eq!(
        lines_of(&f.settings, &format!("SELECT K FROM `{db}`.keyed")),
        want
    );
}

/// A TCP relay to MariaDB that can be taken down: open connections are cut, new ones refused.
struct Relay {
    port: u16,
    down: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    accept: Option<std::thread::JoinHandle<()>>,
}

impl Relay {
    fn to(target: String) -> Relay {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.set_nonblocking(true).expect("nonblocking");
        let port = l.local_addr().expect("addr").port();
        let down = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::new(Mutex::new(Vec::new()));
        let (d, cs) = (down.clone(), conns.clone());
        let accept = std::thread::spawn(move || {
            while !d.load(Ordering::SeqCst) {
                match l.accept() {
                    Ok((client, _)) => {
                        let _ = client.set_nonblocking(false);
                        let Ok(server) = TcpStream::connect(&target) else {
                            continue;
                        };
                        let mut all = cs.lock().expect("conns");
                        for (mut from, mut to) in [
                            (
                                client.try_clone().expect("clone"),
                                server.try_clone().expect("clone"),
                            ),
                            (
                                server.try_clone().expect("clone"),
                                client.try_clone().expect("clone"),
                            ),
                        ] {
                            std::thread::spawn(move || {
                                let mut buf = [0u8; 16384];
                                while let Ok(n) = from.read(&mut buf) {
                                    if n == 0 || to.write_all(&buf[..n]).is_err() {
                                        break;
                                    }
                                }
                                let _ = to.shutdown(Shutdown::Both);
                            });
                        }
                        all.push(client);
                        all.push(server);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            // the listener is dropped here: new connections are refused
        });
        Relay {
            port,
            down,
            conns,
            accept: Some(accept),
        }
    }

    fn take_down(&mut self) {
        self.down.store(true, Ordering::SeqCst);
        if let Some(a) = self.accept.take() {
            let _ = a.join();
        }
        for c in self.conns.lock().expect("conns").iter() {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

/// MariaDB goes down (through a relay) after the first batch: the query fails naming MariaDB,
/// without bisecting and without a single dead letter.
#[test]
fn a_server_that_is_down_is_not_a_poison_row() {
    let mut f = Fixture::new("refdown");
    let topic = f.topic("lines");
    let db = f.database();
    sql(
        &f.settings,
        &format!("CREATE TABLE `{db}`.relayed (LINE VARCHAR(20) NOT NULL) ENGINE=InnoDB"),
    );
    let lines: Vec<String> = (0..30).map(|i| format!("line-{i:02}")).collect();
    produce_lines(&f.settings, &topic, &lines);
    let real = Settings::address_of(&f.settings.mariadb);
    let relay = Arc::new(Mutex::new(Relay::to(real.clone())));
    let mut settings = f.settings.clone();
    // through the relay only: the client would switch to the server's Unix socket otherwise
    settings.mariadb = format!(
        "{}/?prefer_socket=false",
        settings.mariadb.replace(
            &real,
            &format!("127.0.0.1:{}", relay.lock().expect("relay").port)
        )
    );
    let r = relay.clone();
    let q = Query::new(&format!("refdown-{}", f.tag))
        .settings(settings)
        .outage_retry(Duration::from_secs(1))
        .trigger(Trigger::AvailableNow)
        .quiet(true)
        .on_progress(move |p| {
            if p.batch_id == 0 {
                r.lock().expect("relay").take_down();
            }
        })
        .start([lines_stream(&topic).write(MariaDbInsert::new(
            &db,
            "relayed",
            &["LINE"],
            |l: &String| vec![Value::from(l.as_str())],
        ))])
        .expect("start");
    assert!(q.await_termination(Duration::from_secs(180)).expect("wait"));
    let sum = q.summary();
    let Status::Failed(why) = &sum.status else {
        panic!(
            "the query should fail while MariaDB is down: {:?} {:?}",
            sum.status,
            sum.batches
                .iter()
                .map(|b| (b.batch_id, b.rows_in))
                .collect::<Vec<_>>()
        );
    };
    assert!(why.contains("MariaDB"), "{why}");
    assert!(!why.contains("bisecting"), "{why}");
    assert_eq!(sum.total_dead_letters, 0);
    assert!(letters(&f.settings, &topic).is_empty(), "no dead letter");
    assert_eq!(
        lines_of(&f.settings, &format!("SELECT LINE FROM `{db}`.relayed")),
        lines[..10].to_vec(),
        "only the first batch"
    );
}

/// A sink that refuses any batch holding a line that starts with `bad`, and cannot try rows.
struct Picky;

impl Sink<String> for Picky {
    fn name(&self) -> String {
        "picky".into()
    }
    fn apply(
        &mut self,
        _b: &BatchInfo,
        rows: &[String],
        _p: &serde_json::Value,
    ) -> bde_kit::Result<u64> {
        if rows.iter().any(|r| r.starts_with("bad")) {
            return Err(Error::service(
                Service::MariaDb,
                "127.0.0.1:3306",
                "take the batch",
                "the destination refuses a line",
            ));
        }
        Ok(rows.len() as u64)
    }
}

/// A sink that cannot try rows apart: the error says bisecting cannot help and names
/// `dead_letter_refused_batches`; with it, the batch's rows go to the dead-letter topic and the
/// query goes on.
#[test]
fn a_sink_that_cannot_try_rows_names_the_way_out() {
    let mut f = Fixture::new("refway");
    let topic = f.topic("lines");
    let mut lines: Vec<String> = (0..30).map(|i| format!("line-{i:02}")).collect();
    lines[12] = "bad-12".into();
    produce_lines(&f.settings, &topic, &lines);
    let run = |option: bool| {
        let q = Query::new(&format!("refway-{}", f.tag))
            .settings(f.settings.clone())
            .trigger(Trigger::AvailableNow)
            .quiet(true)
            .dead_letter_refused_batches(option)
            .start([lines_stream(&topic).write(Picky)])
            .expect("start");
        assert!(q.await_termination(Duration::from_secs(180)).expect("wait"));
        q.summary()
    };
    let first = run(false);
    let Status::Failed(why) = &first.status else {
        panic!("without the option the query fails: {:?}", first.status);
    };
    assert!(
        why.contains("bisecting the batch cannot help")
            && why.contains(".dead_letter_refused_batches(true)"),
        "{why}"
    );
    assert!(letters(&f.settings, &topic).is_empty());
    let second = run(true);
    assert_eq!(second.status, Status::Stopped);
    assert_eq!(second.total_dead_letters, 10, "the refused batch's rows");
    let l = letters(&f.settings, &topic);
    assert_eq!(
        l.iter().map(|l| l.offset).collect::<Vec<_>>(),
        (10..20).collect::<Vec<i64>>()
    );
}

/// The child of the crash test: the lines to Kafka (first sink) and to MariaDB `lines`
/// (second), from the configuration in `BDE_REFUSED_CHILD`; does nothing without it.
#[test]
fn refused_crash_child() {
    let Ok(cfg) = std::env::var("BDE_REFUSED_CHILD") else {
        return;
    };
    let c: Vec<&str> = cfg.split('|').collect();
    let [query, topic, out, db, cp_root] = c[..] else {
        panic!("BDE_REFUSED_CHILD: {cfg}");
    };
    let mut settings = Settings::from_env();
    settings.checkpoint_dir = cp_root.into();
    let lines = lines_stream(topic);
    let q = Query::new(query)
        .settings(settings)
        .trigger(Trigger::AvailableNow)
        .quiet(true)
        .on_progress(|p| {
            let what = if p.replay { "replayed" } else { "committed" };
            let mut o = std::io::stdout().lock();
            let _ = writeln!(o, "{what} batch {}", p.batch_id);
            let _ = o.flush();
        })
        .start([
            lines.write(KafkaSink::new(out, |l: &String| l.clone())),
            lines.write(MariaDbInsert::new(db, "lines", &["LINE"], |l: &String| {
                vec![Value::from(l.as_str())]
            })),
        ])
        .expect("start");
    assert!(q.await_termination(Duration::from_secs(120)).expect("wait"));
    assert_eq!(q.summary().status, Status::Stopped);
}

/// Crash between the sinks of the batch whose long line the MariaDB check refused, widen the
/// column, restart: the replay leaves the line out again, so the Kafka sink's output has every
/// line once and its `bde-seq` numbers are unchanged.
#[test]
fn a_replay_keeps_the_first_runs_refusals_after_a_column_is_widened() {
    let mut f = Fixture::new("refwide");
    let topic = f.topic("lines");
    let out = f.topic_name("out");
    let db = f.database();
    sql(
        &f.settings,
        &format!("CREATE TABLE `{db}`.lines (LINE VARCHAR(20) NOT NULL) ENGINE=InnoDB"),
    );
    let mut lines: Vec<String> = (0..40).map(|i| format!("line-{i:02}")).collect();
    lines[13] = format!("line-13-{}", "x".repeat(25)); // 33 characters: refused by VARCHAR(20)
    produce_lines(&f.settings, &topic, &lines);
    let cfg = [
        format!("refwide-{}", f.tag),
        topic.clone(),
        out.clone(),
        db.clone(),
        f.cp_root.to_string_lossy().into_owned(),
    ]
    .join("|");
    let child = |crash: Option<&str>| {
        let mut cmd = std::process::Command::new(std::env::current_exe().expect("exe"));
        cmd.args([
            "--exact",
            "refused_crash_child",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("BDE_REFUSED_CHILD", &cfg)
        .env_remove("BDE_CRASH_AT");
        if let Some(at) = crash {
            cmd.env("BDE_CRASH_AT", at);
        }
        cmd.output().expect("run the child")
    };
    let first = child(Some("between-sinks@1"));
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert_eq!(
        first.status.signal(),
        Some(6),
        "the first run aborts:\n{stderr}"
    );
    assert!(
        stderr.contains("aborting at between-sinks of batch 1"),
        "{stderr}"
    );
    let l = letters(&f.settings, &topic);
    assert_eq!(
        l.iter().map(|l| (l.offset, l.batch_id)).collect::<Vec<_>>(),
        vec![(13, 1)],
        "the long line was refused in batch 1, the batch the run crashed in"
    );
    sql(
        &f.settings,
        &format!("ALTER TABLE `{db}`.lines MODIFY LINE VARCHAR(100) NOT NULL"),
    );
    let second = child(None);
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(
        second.status.success(),
        "the restart ends well:\n{stdout}\n{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert!(stdout.contains("replayed batch 1\n"), "{stdout}");

    let kept: Vec<String> = lines.iter().filter(|l| l.len() <= 20).cloned().collect();
    let got: Vec<String> = kafka::read_all(&f.settings, &out, Duration::from_secs(30))
        .expect("out")
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(
        got, kept,
        "every line once, in order, the long one left out"
    );
    let batches = kafka::header_values(&f.settings, &out, "bde-batch", Duration::from_secs(30))
        .expect("bde-batch");
    let seqs = kafka::header_values(&f.settings, &out, "bde-seq", Duration::from_secs(30))
        .expect("bde-seq");
    let mut per_batch: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (b, s) in batches.into_iter().zip(seqs) {
        per_batch
            .entry(b.expect("bde-batch"))
            .or_default()
            .push(s.expect("bde-seq"));
    }
    for (b, s) in &per_batch {
        let want: Vec<String> = (0..s.len()).map(|i| i.to_string()).collect();
        assert_eq!(
            s, &want,
            "bde-seq of batch {b} runs 0.. without a gap or a repeat"
        );
    }
    let mut want = kept.clone();
    want.sort();
    assert_eq!(
        lines_of(&f.settings, &format!("SELECT LINE FROM `{db}`.lines")),
        want,
        "MariaDB: every line once, the long one left out"
    );
}

/// A source topic with Kafka's longest name (249 characters): its dead letters go to a topic
/// whose name fits the limit (the name's start, a hash, `.dlq`), and the query goes on.
#[test]
fn a_long_source_topics_dead_letters_go_to_a_name_within_kafkas_limit() {
    let mut f = Fixture::new("reflong");
    let head = format!("bde_test.long.{}.", f.tag);
    let topic = format!("{head}{}", "x".repeat(249 - head.len()));
    kafka::create_topics(&f.settings, &[&topic], 1).expect("create the long topic");
    let dlq = DeadLetter::topic_for(&topic);
    f.topics.push(topic.clone());
    f.topics.push(dlq.clone());
    assert!(dlq.len() <= 249 && dlq.ends_with(".dlq"), "{dlq}");
    let vs = visits(2);
    produce_lines(
        &f.settings,
        &topic,
        &[vs[0].to_json(), "not json".into(), vs[1].to_json()],
    );
    let q = Query::new(&format!("reflong-{}", f.tag))
        .settings(f.settings.clone())
        .trigger(Trigger::AvailableNow)
        .quiet(true)
        .start([
            Stream::<Visit>::read(KafkaSource::new(&topic).starting(Start::Earliest))
                .write(MemorySink::new("long")),
        ])
        .expect("start");
    assert!(q.await_termination(Duration::from_secs(120)).expect("wait"));
    let sum = q.summary();
    assert_eq!(sum.status, Status::Stopped);
    assert_eq!(sum.total_dead_letters, 1);
    let l = letters(&f.settings, &topic);
    assert_eq!(l.iter().map(|l| l.offset).collect::<Vec<_>>(), vec![1]);
}
