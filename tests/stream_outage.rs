//! A running query rides out a short outage of Redis and MariaDB (its sinks) and of Kafka (its
//! source).
//!
//! Each test starts a private server on a free port of 127.0.0.1 (never the shared ones other
//! tests use), kills it (Redis, MariaDB: SIGKILL; Kafka: SIGINT, see [`private_kafka`]) while the query
//! runs and rows wait for it, starts it again on the same data a few seconds later, and checks the outcome: the query reported the outage
//! naming the service and its address, it is still running, and every row was applied once.
//! The outage (5 s) is longer than the sink's own three retries (3 s in all), so without the
//! outage retry the query fails.

#[path = "stream_util/mod.rs"]
mod stream_util;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bde_kit::course::visit::Visit;
use bde_kit::io::kafka;
use bde_kit::stream::sink::{MariaDbInsert, RedisZIncr};
use bde_kit::stream::{KafkaSource, Query, Start, Status, Stream, StreamingQuery, Trigger};
use bde_kit::Settings;
use stream_util::*;

/// How long the killed server stays down.
const OUTAGE: Duration = Duration::from_secs(5);

/// A free port of 127.0.0.1 (the OS picks it; the test binds it right after).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn wait_port(port: u16, within: Duration) -> bool {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A server process of this test, in its own process group, killed (whole group) on drop.
struct Private {
    port: u16,
    dir: PathBuf,
    argv: Vec<String>,
    /// The signal that ends it in an outage.
    signal: &'static str,
    child: Option<Child>,
}

impl Private {
    fn start(port: u16, dir: PathBuf, argv: Vec<String>, signal: &'static str) -> Private {
        std::fs::create_dir_all(&dir).expect("data dir");
        let mut p = Private {
            port,
            dir,
            argv,
            signal,
            child: None,
        };
        p.restart();
        p
    }

    fn restart(&mut self) {
        use std::os::unix::process::CommandExt;
        let log = std::fs::File::create(self.dir.join("server.log")).expect("log");
        let child = Command::new(&self.argv[0])
            .args(&self.argv[1..])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("start the private server");
        self.child = Some(child);
        assert!(
            wait_port(self.port, Duration::from_secs(30)),
            "the private server {:?} did not open port {} (log {})",
            self.argv,
            self.port,
            self.dir.join("server.log").display()
        );
    }

    /// Its signal to the server's process group, and waits until it is gone.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let group = format!("-{}", c.id());
            let _ = Command::new("kill")
                .args(["-s", self.signal, "--", &group])
                .status();
            let until = Instant::now() + Duration::from_secs(20);
            while matches!(c.try_wait(), Ok(None)) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(50));
            }
            // did not end on its signal: the test must not leave it behind
            let _ = Command::new("kill")
                .args(["-s", "KILL", "--", &group])
                .status();
            let _ = c.wait();
        }
        let until = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            && Instant::now() < until
        {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn private_dir(what: &str) -> PathBuf {
    std::env::temp_dir().join(unique(&format!("bde_outage_{what}")))
}

/// A private Redis that keeps its data across a kill (append-only file, fsync on every write).
fn private_redis() -> Private {
    let port = free_port();
    let dir = private_dir("redis");
    let argv = [
        "redis-server",
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--dir",
        &dir.to_string_lossy(),
    ]
    .map(String::from)
    .to_vec();
    Private::start(port, dir, argv, "KILL")
}

/// The noida-db binary of the venv (as `kernel/services.sh` starts it).
fn noida_bin() -> PathBuf {
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/lib");
    std::fs::read_dir(&lib)
        .expect("the venv (.venv/lib): run kernel/setup.sh")
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("site-packages/noida_db/noida-db"))
        .find(|p| p.exists())
        .expect("noida-db in the venv")
}

/// A private Kafka broker (noida-db) with its own data folder. It keeps its data over a stop
/// (SIGINT, its Ctrl-C), not over a SIGKILL (the topic would come back empty, which the query rightly
/// refuses as a recreated topic), so its outage is a stop.
fn private_kafka() -> Private {
    let port = free_port();
    let dir = private_dir("kafka");
    let argv = vec![
        noida_bin().to_string_lossy().into_owned(),
        "start".into(),
        "--only".into(),
        "kafka".into(),
        "--host".into(),
        "127.0.0.1".into(),
        "--kafka-port".into(),
        port.to_string(),
        "--data-dir".into(),
        dir.join("data").to_string_lossy().into_owned(),
    ];
    Private::start(port, dir, argv, "INT")
}

/// A private MariaDB (its own data folder, socket and port, initialised by `mariadb-install-db`)
/// whose root logs in by the Unix socket only and whose one TCP user is the course's
/// `spark`@127.0.0.1 with its password (`--init-file`, run at every start), so the course user's
/// URL works on it and nobody gets in without a password. InnoDB keeps committed transactions over
/// a SIGKILL.
fn private_mariadb() -> Private {
    let port = free_port();
    let dir = private_dir("mariadb");
    let data = dir.join("data");
    std::fs::create_dir_all(&dir).expect("dir");
    let out = Command::new("mariadb-install-db")
        .args([
            "--no-defaults",
            &format!("--datadir={}", data.display()),
            "--user=root",
            "--skip-test-db",
            "--auth-root-authentication-method=socket",
        ])
        .output()
        .expect("mariadb-install-db");
    assert!(
        out.status.success(),
        "mariadb-install-db: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let init = dir.join("init.sql");
    std::fs::write(
        &init,
        "CREATE USER IF NOT EXISTS 'spark'@'127.0.0.1' IDENTIFIED BY 'spark';\n\
         CREATE USER IF NOT EXISTS 'spark'@'localhost' IDENTIFIED BY 'spark';\n\
         GRANT ALL PRIVILEGES ON *.* TO 'spark'@'127.0.0.1';\n\
         GRANT ALL PRIVILEGES ON *.* TO 'spark'@'localhost';\n",
    )
    .expect("init file");
    let argv = [
        "mariadbd".to_string(),
        "--no-defaults".into(),
        format!("--datadir={}", data.display()),
        format!("--port={port}"),
        "--bind-address=127.0.0.1".into(),
        format!("--socket={}", dir.join("sock").display()),
        format!("--pid-file={}", dir.join("pid").display()),
        "--user=root".into(),
        format!("--init-file={}", init.display()),
        "--skip-log-bin".into(),
        "--innodb-buffer-pool-size=16M".into(),
    ]
    .to_vec();
    Private::start(port, dir, argv, "KILL")
}

/// SUM(DURATION) per COUNTRY of `db.visits_out` on the server `s` names (empty while it is down).
fn db_sums(s: &Settings, db: &str) -> std::collections::BTreeMap<String, i64> {
    use bde_kit::mysql::prelude::Queryable;
    let Ok(mut c) = bde_kit::io::mariadb::conn(s, None) else {
        return Default::default();
    };
    c.query::<(String, i64), _>(format!(
        "SELECT COUNTRY, CAST(SUM(DURATION) AS SIGNED) FROM `{db}`.visits_out GROUP BY COUNTRY"
    ))
    .map(|rows| rows.into_iter().collect())
    .unwrap_or_default()
}

#[test]
fn a_mariadb_outage_is_ridden_out_and_every_row_is_applied_once() {
    let mut f = Fixture::new("outage_mariadb");
    let topic = f.topic("visits");
    let mut server = private_mariadb();
    let mut s = f.settings.clone();
    s.mariadb = format!("mysql://spark:spark@127.0.0.1:{}", server.port);
    let db = "bde_test_outage";
    bde_kit::io::mariadb::execute(&s, None, &format!("CREATE DATABASE `{db}`")).expect("db");
    bde_kit::io::mariadb::execute(
        &s,
        None,
        &format!("CREATE TABLE `{db}`.visits_out (COUNTRY VARCHAR(45), DURATION INT)"),
    )
    .expect("table");
    let vs = visits(300);
    produce(&s, &topic, &vs[..100]);
    let q = Query::new(&format!("outage-{}", f.tag))
        .settings(s.clone())
        .trigger(Trigger::every(Duration::from_millis(100)))
        .start([Stream::<Visit>::read(
            KafkaSource::new(&topic)
                .starting(Start::Earliest)
                .max_records(40),
        )
        .write(MariaDbInsert::new(
            db,
            "visits_out",
            &["COUNTRY", "DURATION"],
            |v: &Visit| vec![v.country.clone().into(), v.duration.into()],
        ))])
        .expect("start");
    let await_sums = |want: &std::collections::BTreeMap<String, i64>| {
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            let got = db_sums(&s, db);
            if &got == want || Instant::now() > until || q.status().is_terminated() {
                return got;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let first = sum_by(&vs[..100], |v| v.country.clone());
    assert_eq!(
        await_sums(&first),
        first,
        "the first rows are applied before the outage ({})",
        q.status()
    );

    server.kill();
    let down_at = Instant::now();
    produce(&s, &topic, &vs[100..200]);
    let st = await_retrying(&q);
    let address = format!("127.0.0.1:{}", server.port);
    assert!(
        matches!(&st, Status::Retrying(m) if m.contains("MariaDB") && m.contains(&address)),
        "while MariaDB is down the status names it and its address: {st}"
    );
    std::thread::sleep(OUTAGE.saturating_sub(down_at.elapsed()));
    server.restart();
    produce(&s, &topic, &vs[200..]);

    let want = sum_by(&vs, |v| v.country.clone());
    assert_eq!(
        await_sums(&want),
        want,
        "every row applied once ({})",
        q.status()
    );
    assert_eq!(q.status(), Status::Running, "the query still runs");
    q.stop().expect("stop");
}

/// Waits (at most a minute) until `key` holds `want`, reading Redis as `s` says; the last scores.
fn await_scores(
    s: &Settings,
    key: &str,
    want: &std::collections::BTreeMap<String, i64>,
    q: &StreamingQuery,
) -> std::collections::BTreeMap<String, i64> {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let got: std::collections::BTreeMap<String, i64> = bde_kit::io::redis::scores(s, key)
            .unwrap_or_default()
            .into_iter()
            .map(|(m, v)| (m, v as i64))
            .collect();
        if &got == want || Instant::now() > until || q.status().is_terminated() {
            return got;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits (at most 30 s) for a `retrying` status; returns it.
fn await_retrying(q: &StreamingQuery) -> Status {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let st = q.status();
        if matches!(st, Status::Retrying(_)) || st.is_terminated() || Instant::now() > until {
            return st;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn start_query(f: &Fixture, s: &Settings, topic: &str, key: &str) -> StreamingQuery {
    Query::new(&format!("outage-{}", f.tag))
        .settings(s.clone())
        .trigger(Trigger::every(Duration::from_millis(100)))
        .start([Stream::<Visit>::read(
            KafkaSource::new(topic)
                .starting(Start::Earliest)
                .max_records(40),
        )
        .write(RedisZIncr::new(
            key,
            |v: &Visit| v.country.clone(),
            |v: &Visit| v.duration as f64,
        ))])
        .expect("start")
}

#[test]
fn a_redis_outage_is_ridden_out_and_every_row_is_applied_once() {
    let mut f = Fixture::new("outage_redis");
    let topic = f.topic("visits");
    let mut redis = private_redis();
    let mut s = f.settings.clone();
    s.redis = format!("redis://127.0.0.1:{}", redis.port);
    let key = "bde_test:outage:countries";
    let vs = visits(300);
    produce(&s, &topic, &vs[..100]);
    let q = start_query(&f, &s, &topic, key);
    assert_eq!(
        await_scores(&s, key, &sum_by(&vs[..100], |v| v.country.clone()), &q),
        sum_by(&vs[..100], |v| v.country.clone()),
        "the first rows are applied before the outage ({})",
        q.status()
    );

    redis.kill();
    let down_at = Instant::now();
    produce(&s, &topic, &vs[100..200]);
    let st = await_retrying(&q);
    let address = format!("127.0.0.1:{}", redis.port);
    assert!(
        matches!(&st, Status::Retrying(m) if m.contains("Redis") && m.contains(&address)),
        "while Redis is down the status names it and its address: {st}"
    );
    std::thread::sleep(OUTAGE.saturating_sub(down_at.elapsed()));
    redis.restart();
    produce(&s, &topic, &vs[200..]);

    let want = sum_by(&vs, |v| v.country.clone());
    assert_eq!(
        await_scores(&s, key, &want, &q),
        want,
        "every row applied once ({})",
        q.status()
    );
    assert_eq!(q.status(), Status::Running, "the query still runs");
    q.stop().expect("stop");
}

#[test]
fn a_kafka_outage_is_ridden_out_and_every_row_is_applied_once() {
    let mut f = Fixture::new("outage_kafka");
    let key = f.key("countries");
    let mut broker = private_kafka();
    let mut s = f.settings.clone();
    s.kafka = format!("127.0.0.1:{}", broker.port);
    let topic = format!("bde_test.outage.{}", f.tag);
    kafka::create_topics(&s, &[&topic], 1).expect("create topic");
    let vs = visits(300);
    produce(&s, &topic, &vs[..100]);
    let q = start_query(&f, &s, &topic, &key);
    assert_eq!(
        await_scores(&s, &key, &sum_by(&vs[..100], |v| v.country.clone()), &q),
        sum_by(&vs[..100], |v| v.country.clone()),
        "the first rows are applied before the outage ({})",
        q.status()
    );

    broker.kill();
    let down_at = Instant::now();
    let st = await_retrying(&q);
    assert!(
        matches!(&st, Status::Retrying(m) if m.contains("Kafka") && m.contains(&s.kafka)),
        "while Kafka is down the status names it and its address: {st}"
    );
    std::thread::sleep(OUTAGE.saturating_sub(down_at.elapsed()));
    broker.restart();
    produce(&s, &topic, &vs[100..]);

    let want = sum_by(&vs, |v| v.country.clone());
    assert_eq!(
        await_scores(&s, &key, &want, &q),
        want,
        "every row applied once ({})",
        q.status()
    );
    assert_eq!(q.status(), Status::Running, "the query still runs");
    q.stop().expect("stop");
}

#[test]
fn an_outage_longer_than_the_setting_fails_naming_the_service_and_address() {
    let mut f = Fixture::new("outage_long");
    let topic = f.topic("visits");
    let mut redis = private_redis();
    let mut s = f.settings.clone();
    s.redis = format!("redis://127.0.0.1:{}", redis.port);
    let key = "bde_test:outage:long";
    let vs = visits(40);
    let q = Query::new(&format!("outage-long-{}", f.tag))
        .settings(s.clone())
        .trigger(Trigger::every(Duration::from_millis(100)))
        .outage_retry(Duration::from_secs(2))
        .start([
            Stream::<Visit>::read(KafkaSource::new(&topic).starting(Start::Earliest)).write(
                RedisZIncr::new(
                    key,
                    |v: &Visit| v.country.clone(),
                    |v: &Visit| v.duration as f64,
                ),
            ),
        ])
        .expect("start");
    let until = Instant::now() + Duration::from_secs(30);
    while q.status() != Status::Running && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(q.status(), Status::Running, "the query runs (sinks opened)");
    redis.kill();
    produce(&s, &topic, &vs);
    assert!(
        q.await_termination(Duration::from_secs(60)).expect("wait"),
        "the query gives up"
    );
    let st = q.status();
    let address = format!("127.0.0.1:{}", redis.port);
    assert!(
        matches!(&st, Status::Failed(m) if m.contains("Redis") && m.contains(&address) && m.contains("outage_retry")),
        "the error names the service, its address and the setting: {st}"
    );
}
