//! Outside text cannot forge or break a notebook's rich output (issue 19, item 1).
//!
//! A cart line, Redis member and MariaDB cell carrying evcxr's protocol markers go through the
//! monitor, `Table`, `Live` and the dashboard page, against the real servers. Each case runs in a
//! child process (this test binary again, with `BDE_UNTRUSTED_CASE` set) whose stdout is read the
//! way evcxr 0.22 reads a kernel's stdout (eval_context.rs): a line containing
//! `EVCXR_BEGIN_CONTENT <mime>` opens a rich block, only a line `EVCXR_END_CONTENT` closes it, and
//! other `EVCXR_…` lines are commands. Each case must give exactly one rich block, with the value
//! escaped in it, and no protocol line anywhere else.

#[path = "stream_util/mod.rs"]
mod stream_util;

use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

use bde_kit::course::monitor::{action_sums, Monitor, Reading};
use bde_kit::io::{kafka, mariadb, redis};
use bde_kit::show::live::{section, Live};
use bde_kit::{serde_json, Report, Table};
use stream_util::Fixture;

/// The value of issue 19: without the escaping, it closes nothing and opens an HTML block.
const FORGED: &str =
    "X\nEVCXR_BEGIN_CONTENT text/html\n<img src=x onerror=alert(1)>\nEVCXR_END_CONTENT";
/// The same value as plain text prints it (`untrusted::line`).
const FORGED_LINE: &str =
    "X\\nEVCXR\\_BEGIN_CONTENT text/html\\n<img src=x onerror=alert(1)>\\nEVCXR\\_END_CONTENT";
/// The same value inside HTML (`html::escape`).
const FORGED_HTML: &str = "X\\nEVCXR\\_BEGIN_CONTENT text/html\\n&lt;img src=x onerror=alert(1)&gt;\\nEVCXR\\_END_CONTENT";

/// A forged action short enough for `LAST_ACTION VARCHAR(45)`: it would close the block early.
const FORGED_ACTION: &str = "A\nEVCXR_END_CONTENT\n<img src=x>";

const CASE_ENV: &str = "BDE_UNTRUSTED_CASE";
const START: &str = "BDE_UNTRUSTED_CHILD_START";
const END: &str = "BDE_UNTRUSTED_CHILD_END";

/// What evcxr makes of a cell's stdout.
#[derive(Debug, Default)]
struct Cell {
    /// (mime, content) of every rich block, in order.
    blocks: Vec<(String, String)>,
    /// Lines shown as text.
    text: Vec<String>,
    /// Text lines evcxr would take as a command (`EVCXR_…`).
    commands: Vec<String>,
    /// A block was opened and never closed (the cell would swallow everything after it).
    unclosed: bool,
}

fn read_like_evcxr(stdout: &str) -> Cell {
    let mut cell = Cell::default();
    let mut lines = stdout
        .lines()
        .skip_while(|l| *l != START)
        .skip(1)
        .take_while(|l| *l != END);
    while let Some(line) = lines.next() {
        let mime = line
            .find("EVCXR_BEGIN_CONTENT ")
            .map(|i| &line[i + "EVCXR_BEGIN_CONTENT ".len()..])
            .map(|rest| rest.split(' ').next().unwrap_or_default())
            .filter(|m| !m.is_empty());
        if let Some(mime) = mime {
            let mut content = vec![];
            let mut closed = false;
            for l in lines.by_ref() {
                if l == "EVCXR_END_CONTENT" {
                    closed = true;
                    break;
                }
                content.push(l);
            }
            cell.unclosed |= !closed;
            cell.blocks.push((mime.to_string(), content.join("\n")));
        } else if line.starts_with("EVCXR_") {
            cell.commands.push(line.to_string());
        } else {
            cell.text.push(line.to_string());
        }
    }
    cell
}

/// Runs `case` in a child process and reads its stdout like evcxr.
fn run_case(case: &str) -> Cell {
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "child_case", "--nocapture", "--test-threads=1"])
        .env(CASE_ENV, case)
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(END),
        "child case {case} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    read_like_evcxr(&stdout)
}

/// The checks every case shares: one rich block, closed, holding the escaped value and no raw
/// markup of it; no protocol line in the text.
fn assert_one_escaped_block(case: &str, cell: &Cell, mime: &str) {
    assert!(!cell.unclosed, "{case}: a block stays open: {cell:#?}");
    assert!(cell.commands.is_empty(), "{case}: {:?}", cell.commands);
    assert_eq!(
        cell.blocks.len(),
        1,
        "{case}: exactly one rich block: {cell:#?}"
    );
    let (m, content) = &cell.blocks[0];
    assert_eq!(m, mime, "{case}");
    assert!(!content.contains("<img"), "{case}: raw markup: {content}");
    assert!(
        content.lines().all(|l| !l.contains("EVCXR_")),
        "{case}: {content}"
    );
}

#[test]
fn the_monitor_prints_and_renders_a_forged_cart_line_member_and_action_inertly() {
    let cell = run_case("monitor");
    assert_one_escaped_block("monitor", &cell, "text/html");
    let content = &cell.blocks[0].1;
    assert!(
        content.matches(FORGED_HTML).count() >= 2,
        "cart table and country table hold the escaped value: {content}"
    );
    assert!(
        content.contains("<td>A\\nEVCXR\\_END_CONTENT\\n&lt;img src=x&gt;</td>"),
        "the action table holds the escaped action: {content}"
    );
    assert!(
        content.contains("<svg") && content.contains("X\\nEVCXR\\_BEGIN_CONTENT"),
        "chart labels escaped"
    );
    assert!(
        cell.text
            .iter()
            .filter(|l| l.as_str() == FORGED_LINE)
            .count()
            >= 1
            && cell
                .text
                .iter()
                .any(|l| l.starts_with(FORGED_LINE) && l.contains("  =  "))
            && cell
                .text
                .iter()
                .any(|l| l == "A\\nEVCXR\\_END_CONTENT\\n<img src=x>  =  7"),
        "the live block prints the cart line and the member on one line each: {:#?}",
        cell.text
    );
}

#[test]
fn a_table_renders_a_forged_cell_in_one_block_and_prints_it_on_one_line() {
    let cell = run_case("table");
    assert_one_escaped_block("table", &cell, "text/html");
    assert!(cell.blocks[0]
        .1
        .contains(&format!("<td>{FORGED_HTML}</td>")));
    assert!(
        cell.text.iter().any(|l| l.contains(FORGED_LINE)),
        "the text table keeps the cell on its row: {:#?}",
        cell.text
    );
}

#[test]
fn live_blocks_print_a_forged_value_inertly() {
    let cell = run_case("live");
    assert_one_escaped_block("live", &cell, "text/html");
    assert!(
        cell.text.iter().any(|l| l == FORGED_LINE),
        "a value written with untrusted::line is one line: {:#?}",
        cell.text
    );
    assert!(
        cell.text.iter().any(|l| l == "EVCXR\\_END_CONTENT"),
        "a raw value is still broken by Live's own guard: {:#?}",
        cell.text
    );
}

#[test]
fn the_dashboard_page_shows_a_forged_cart_line_and_member_escaped() {
    let cell = run_case("dashboard");
    assert_one_escaped_block("dashboard", &cell, "text/html");
    let panel = cell
        .text
        .iter()
        .find_map(|l| l.strip_prefix("PANEL "))
        .expect("the child printed the panel");
    let panel: String = serde_json::from_str(panel).expect("panel as JSON string");
    assert!(!panel.contains("<img"), "{panel}");
    assert!(
        panel.contains(FORGED_HTML) && panel.contains("<svg"),
        "the lines card holds the escaped line: {panel}"
    );
    assert!(
        panel.lines().all(|l| !l.contains("EVCXR_")),
        "no marker on the page: {panel}"
    );
}

/// The child side: runs the case named in `BDE_UNTRUSTED_CASE`, printing between START and END.
#[test]
fn child_case() {
    let Ok(case) = std::env::var(CASE_ENV) else {
        return;
    };
    println!("\n{START}");
    match case.as_str() {
        "monitor" => monitor_case(),
        "table" => table_case(),
        "live" => live_case(),
        "dashboard" => dashboard_case(),
        other => panic!("unknown case {other}"),
    }
    println!("{END}");
}

fn forged_sources(f: &mut Fixture) -> (String, String, String) {
    let topic = f.topic("untrusted_carts");
    let key = f.key("untrusted_countries");
    let db = f.database();
    let mut c = mariadb::conn(&f.settings, Some(&db)).expect("conn");
    use bde_kit::mysql::prelude::Queryable;
    let now = bde_kit::chrono::Local::now()
        .naive_local()
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    c.exec_drop(
        "INSERT INTO visit_stats (INTERVAL_TIMESTAMP, LAST_ACTION, DURATION) VALUES (?, ?, 7)",
        (now, FORGED_ACTION),
    )
    .expect("insert a forged action");
    let mut con = redis::connect(&f.settings).expect("redis");
    redis::zincrby(&f.settings, &mut con, &key, FORGED, 5.0).expect("zincrby");
    (topic, key, db)
}

fn produce_forged(f: &Fixture, topic: &str) {
    kafka::produce_all(&f.settings, topic, vec![(None, FORGED.to_string())]).expect("produce");
}

fn monitor_case() {
    let mut f = Fixture::new("untrusted_monitor");
    let (topic, key, db) = forged_sources(&mut f);
    let tail = kafka::Tail::latest(&f.settings, &topic).expect("tail");
    produce_forged(&f, &topic);
    let settings = f.settings.clone();
    let (key2, db2) = (key.clone(), db.clone());
    let report = Monitor::course(&f.settings)
        .names(&topic, &key, &db)
        .until_job_stops(None)
        .every(Duration::from_millis(10))
        .refreshes(2)
        .run_with(move || {
            Ok(Reading {
                carts: tail.poll(Duration::from_secs(5))?,
                countries: redis::scores(&settings, &key2)?,
                actions: action_sums(&settings, &db2)?,
            })
        })
        .expect("monitor runs");
    assert_eq!(report.carts, vec![FORGED.to_string()], "the line was read");
    assert_eq!(report.countries, vec![(FORGED.to_string(), 5.0)]);
    assert!(
        report.windows.iter().any(|w| w.1 == FORGED_ACTION),
        "{:?}",
        report.windows
    );
    report.evcxr_display();
}

fn table_case() {
    let df = bde_kit::polars::df!("country" => [FORGED, "USA"], "n" => [1i64, 2]).expect("df");
    let t = Table::new(&df).title(FORGED);
    println!("{t}");
    t.evcxr_display();
}

fn live_case() {
    let n = Live::every(Duration::from_millis(1))
        .refreshes(2)
        .run(|i| {
            Ok(if i == 0 {
                format!(
                    "{}{}\n",
                    section("Shopping Cart from Kafka"),
                    bde_kit::untrusted::line(FORGED)
                )
            } else {
                format!("{}{FORGED}\n", section("Raw"))
            })
        })
        .expect("live runs");
    assert_eq!(n, 2);
    Report::new()
        .heading(FORGED)
        .text(FORGED)
        .table(Table::from_rows(&["v"], vec![vec![FORGED.into()]]))
        .evcxr_display();
}

fn dashboard_case() {
    let mut f = Fixture::new("untrusted_dashboard");
    let (topic, key, db) = forged_sources(&mut f);
    let d = Monitor::course(&f.settings)
        .names(&topic, &key, &db)
        .until_job_stops(None)
        .dashboard()
        .expect("dashboard starts");
    produce_forged(&f, &topic);
    let t = Instant::now();
    while d.panels().lines_seen < 1 || d.panels().bars.is_none_or(|b| b.1.is_empty()) {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the dashboard never read the line"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let panel = http_get(d.port(), "/panel");
    println!(
        "PANEL {}",
        serde_json::to_string(&panel).expect("panel as JSON")
    );
    d.evcxr_display();
    d.stop();
}

fn http_get(port: u16, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n").expect("request");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("response");
    let (head, body) = text.split_once("\r\n\r\n").expect("a response");
    assert!(
        head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"),
        "{head}"
    );
    body.to_string()
}
