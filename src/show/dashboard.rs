//! [`Dashboard`]: a live page of a running pipeline, served by the kit on 127.0.0.1 and shown in
//! a cell's output as an iframe.
//!
//! evcxr sends rich output only when a cell ends, so a cell cannot redraw a chart while a query
//! runs. A dashboard instead runs two background threads in the kernel: a *sampler* that asks
//! its panels for fresh data every second (by default) and renders them (inline SVG charts from
//! plotters, HTML tables), and a small HTTP server ([`server`]) on a free loopback port that
//! serves the page. The page polls the server twice a second with a few lines of inline script
//! (no CDN, works offline) and says clearly when the query has stopped, and when the dashboard
//! itself is gone (stopped by [`DashboardHandle::stop`] or with the kernel).
//!
//! Panels, each optional:
//! - newest lines of a topic ([`Dashboard::lines`]),
//! - totals as a bar chart ([`Dashboard::bars`]),
//! - sums per key over time as a line chart ([`Dashboard::series`]),
//! - a query's progress: input rows/s, processed rows/s, batch duration, watermark, time per
//!   sink, dead letters, status ([`Dashboard::query`] from a handle in this kernel,
//!   [`Dashboard::query_named`] for a query that may run in another kernel).
//!
//! ```no_run
//! # fn main() -> bde_kit::Result<()> {
//! # let job: bde_kit::stream::StreamingQuery = unimplemented!();
//! let dash = bde_kit::show::query_dashboard(&job)?; // the cell's value: an iframe that updates every second
//! // … later, or never: stopping the kernel stops it too
//! dash.stop();
//! # Ok(()) }
//! ```
//!
//! Addresses: the page is served on `http://127.0.0.1:<port>/` (the direct address, for
//! front-ends on the kernel's machine), and through Jupyter's own address as
//! `<base URL>proxy/<port>/v/<key>/` with `jupyter-server-proxy` (requirements-dev.txt), so it works
//! wherever the notebook does (JupyterHub, Binder, an SSH tunnel to Jupyter's port only). The
//! cell's output is an iframe on the direct address plus a few lines of script that, in
//! JupyterLab or Notebook 7, read the page's base URL and switch the iframe to the proxied
//! address when it answers.
//!
//! A saved notebook keeps a snapshot: [`DashboardHandle::snapshot`] (or the value of
//! [`DashboardHandle::stop`]) as a cell's value is static HTML with the last charts, tables and
//! progress as SVG/HTML.
//!
//! Starting a dashboard with the title of a running one replaces it (a re-run cell does not
//! leave an old server behind); [`stop_all`] stops every dashboard of the kernel. Both work
//! across cells and kernels' cell processes (see [`registry`]).

mod feed;
mod page;
mod registry;
mod server;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::show::html::escape;
use crate::stream::{StreamingQuery, Summary};

pub use feed::{Panels, ProgressView};

type LinesFn = Box<dyn FnMut() -> Result<Vec<String>> + Send>;
type BarsFn = Box<dyn FnMut() -> Result<Vec<(String, f64)>> + Send>;
type SeriesFn = Box<dyn FnMut() -> Result<Vec<(i64, String, f64)>> + Send>;
type SummaryFn = Box<dyn FnMut() -> Result<Option<Summary>> + Send>;

/// Where the progress panel reads from.
enum ProgressSource {
    /// The handle of a query of this kernel.
    Handle(StreamingQuery),
    /// Any function (another kernel's published progress, a test).
    Fn { name: String, read: SummaryFn },
}

/// A dashboard being built: a title, its panels and how often they refresh.
pub struct Dashboard {
    title: String,
    every: Duration,
    keep_lines: usize,
    lines: Option<(String, LinesFn)>,
    bars: Option<(String, BarsFn)>,
    series: Option<(String, SeriesFn)>,
    progress: Option<ProgressSource>,
    /// The progress panel's note while a named query is not running.
    not_running_note: String,
}

impl Dashboard {
    /// An empty dashboard titled `title`; panels refresh every second.
    pub fn new(title: impl Into<String>) -> Dashboard {
        Dashboard {
            title: title.into(),
            every: Duration::from_secs(1),
            keep_lines: 15,
            lines: None,
            bars: None,
            series: None,
            progress: None,
            not_running_note: "start it; this panel follows it once it runs".into(),
        }
    }

    /// How often the panels are read (at least 100 ms; the page polls every 500 ms).
    pub fn every(mut self, every: Duration) -> Dashboard {
        self.every = every.max(Duration::from_millis(100));
        self
    }

    /// A panel of the newest lines: `poll` returns the lines that arrived since its last call
    /// (e.g. [`crate::io::kafka::Tail::poll`]); the page shows the newest `keep` (default 15).
    pub fn lines(
        mut self,
        title: impl Into<String>,
        poll: impl FnMut() -> Result<Vec<String>> + Send + 'static,
    ) -> Dashboard {
        self.lines = Some((title.into(), Box::new(poll)));
        self
    }

    /// How many of the newest lines the lines panel keeps.
    pub fn keep_lines(mut self, keep: usize) -> Dashboard {
        self.keep_lines = keep.max(1);
        self
    }

    /// A bar chart of totals (label, value), e.g. a Redis sorted set, with their sum.
    pub fn bars(
        mut self,
        title: impl Into<String>,
        read: impl FnMut() -> Result<Vec<(String, f64)>> + Send + 'static,
    ) -> Dashboard {
        self.bars = Some((title.into(), Box::new(read)));
        self
    }

    /// A time series per key: `read` returns (Unix seconds, key, value) points, e.g. window sums.
    pub fn series(
        mut self,
        title: impl Into<String>,
        read: impl FnMut() -> Result<Vec<(i64, String, f64)>> + Send + 'static,
    ) -> Dashboard {
        self.series = Some((title.into(), Box::new(read)));
        self
    }

    /// The progress of a query started in this kernel.
    pub fn query(mut self, job: &StreamingQuery) -> Dashboard {
        self.progress = Some(ProgressSource::Handle(job.clone()));
        self
    }

    /// The progress of the query `name`: its handle when it runs in this kernel, otherwise the
    /// progress it publishes in its checkpoint folder under `settings` (another kernel); a
    /// file left by a run that ended before the dashboard started is ignored.
    pub fn query_named(self, name: &str, settings: &Settings) -> Dashboard {
        let (name2, settings) = (name.to_string(), settings.clone());
        let since_ms = chrono::Utc::now().timestamp_millis();
        self.query_from(name, move || {
            feed::named_summary(&name2, &settings, since_ms)
        })
    }

    /// What the progress panel says while the query of [`Dashboard::query_named`] or
    /// [`Dashboard::query_from`] is not running yet (default: "start it; this panel follows it
    /// once it runs"); the caller knows where it is started (a notebook, a command).
    pub fn not_running_note(mut self, note: impl Into<String>) -> Dashboard {
        self.not_running_note = note.into();
        self
    }

    /// The progress of a query read by any function (`Ok(None)`: nothing known yet).
    pub fn query_from(
        mut self,
        name: &str,
        read: impl FnMut() -> Result<Option<Summary>> + Send + 'static,
    ) -> Dashboard {
        self.progress = Some(ProgressSource::Fn {
            name: name.into(),
            read: Box::new(read),
        });
        self
    }

    /// Starts the sampler and the server in the background and returns at once. A running
    /// dashboard with the same title is stopped first.
    pub fn start(self) -> Result<DashboardHandle> {
        registry::stop(&self.title);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| {
            Error::Task(format!(
                "the dashboard could not listen on 127.0.0.1 (any free port): {e}"
            ))
        })?;
        let port = listener
            .local_addr()
            .map_err(|e| Error::Task(format!("the dashboard server has no TCP port: {e}")))?
            .port();
        let token = format!("{:016x}", rand::random::<u64>());
        let state = Arc::new(State {
            stop: AtomicBool::new(false),
            token: token.clone(),
            view_key: format!("{:016x}", rand::random::<u64>()),
            view: Mutex::new(page::View::starting(&self.title)),
        });
        let title = self.title.clone();
        let sampler_state = state.clone();
        std::thread::Builder::new()
            .name("bde-dashboard-sampler".into())
            .spawn(move || feed::run_sampler(self, &sampler_state))
            .map_err(|e| {
                Error::Task(format!(
                    "could not start the dashboard's sampler thread: {e}"
                ))
            })?;
        let server_state = state.clone();
        std::thread::Builder::new()
            .name("bde-dashboard-http".into())
            .spawn(move || server::serve(listener, &server_state))
            .map_err(|e| {
                Error::Task(format!(
                    "could not start the dashboard's server thread: {e}"
                ))
            })?;
        registry::record(&title, port, &token);
        Ok(DashboardHandle { title, port, state })
    }
}

/// What the sampler and the server share.
struct State {
    stop: AtomicBool,
    /// Asked for by `/stop` (see [`registry`]); never shown.
    token: String,
    /// The secret path `/v/<key>/` under which the page is served to any `Host` (through
    /// Jupyter's proxy); in the cell's output.
    view_key: String,
    view: Mutex<page::View>,
}

/// A running dashboard (cheap to clone). As a cell's value it shows the page in an iframe.
#[derive(Clone)]
pub struct DashboardHandle {
    title: String,
    port: u16,
    state: Arc<State>,
}

impl DashboardHandle {
    /// The page's direct address, `http://127.0.0.1:<port>/` (on the kernel's machine).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// The page's address through Jupyter, relative to Jupyter's base URL:
    /// `proxy/<port>/v/<key>/` (served by jupyter-server-proxy), e.g.
    /// `http://host/course/proxy/8123/v/0f3a…/`; the key lets the page through the Host check.
    pub fn proxy_path(&self) -> String {
        format!("proxy/{}/v/{}/", self.port, self.state.view_key)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn title(&self) -> &str {
        &self.title
    }

    /// Stops the sampler and the server (a page still open then says the dashboard is gone);
    /// returns the last view as a [`Snapshot`], which as a cell's value stays in the notebook.
    pub fn stop(&self) -> Snapshot {
        self.state.stop.store(true, Ordering::SeqCst);
        registry::forget(&self.title, &self.state.token);
        self.snapshot()
    }

    /// The figures the page shows now as static HTML (charts as SVG, tables, progress): as a
    /// cell's value it is saved with the notebook, where the live iframe keeps nothing.
    pub fn snapshot(&self) -> Snapshot {
        let (title, fragment) = self
            .state
            .view
            .lock()
            .map(|v| (v.panels.title.clone(), v.fragment.clone()))
            .unwrap_or_else(|_| (self.title.clone(), String::new()));
        Snapshot {
            html: page::snapshot(
                &title,
                &fragment,
                &chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string(),
            ),
        }
    }

    pub fn is_running(&self) -> bool {
        !self.state.stop.load(Ordering::SeqCst)
    }

    /// The figures the page shows now.
    pub fn panels(&self) -> Panels {
        self.state
            .view
            .lock()
            .map(|v| v.panels.clone())
            .unwrap_or_default()
    }

    /// The HTML of the cell output: the iframe on the direct address, a link to open the page
    /// in a tab, and a script that switches both to Jupyter's address (`<base URL>proxy/<port>/`)
    /// when the page runs in JupyterLab or Notebook 7 and the proxy answers.
    pub fn to_html(&self) -> String {
        let url = self.url();
        let id = format!("bde-dash-{}", &self.state.view_key[..8]);
        format!(
            "<div class=\"bde-dashboard\" id=\"{id}\" data-bde-via=\"direct\"><iframe src=\"{url}\" title=\"{t}\" style=\"width:100%;height:980px;border:1px solid #ccc\"></iframe>\
             <div style=\"font-size:12px;color:#555\">Live dashboard <a class=\"bde-dash-link\" href=\"{url}\" target=\"_blank\">{url}</a> \
             <span class=\"bde-dash-via\">(the kernel's 127.0.0.1)</span>, served by this kernel (stops with the kernel or with <code>.stop()</code>; \
             <code>.snapshot()</code> keeps a static copy in the notebook).</div>\
             <script>(function () {{\
             var box = document.getElementById(\"{id}\"), cfg = document.getElementById(\"jupyter-config-data\");\
             if (!box || !cfg) return;\
             var base; try {{ base = JSON.parse(cfg.textContent).baseUrl; }} catch (e) {{ return; }}\
             if (!base) return; if (base.slice(-1) !== \"/\") base += \"/\";\
             var via = base + \"{proxy}\";\
             fetch(via + \"data.json\", {{cache: \"no-store\", credentials: \"same-origin\"}}).then(function (r) {{\
             if (!r.ok) throw new Error(\"HTTP \" + r.status);\
             box.querySelector(\"iframe\").src = via; var a = box.querySelector(\"a.bde-dash-link\"); a.href = via; a.textContent = via;\
             box.querySelector(\".bde-dash-via\").textContent = \"(through Jupyter's address)\"; box.setAttribute(\"data-bde-via\", \"proxy\");\
             }}).catch(function () {{}});\
             }})();</script></div>",
            t = escape(&self.title),
            proxy = self.proxy_path()
        )
    }

    /// Rich output for evcxr: the iframe.
    pub fn evcxr_display(&self) {
        crate::show::display_html(&self.to_html());
    }
}

impl std::fmt::Debug for DashboardHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Dashboard({}, {}, {})",
            self.title,
            self.url(),
            if self.is_running() {
                "running"
            } else {
                "stopped"
            }
        )
    }
}

/// A dashboard's figures at one moment, as static HTML (see [`DashboardHandle::snapshot`]).
#[derive(Debug, Clone)]
pub struct Snapshot {
    html: String,
}

impl Snapshot {
    /// The static HTML (no script): the last charts, tables and progress.
    pub fn to_html(&self) -> &str {
        &self.html
    }

    /// Rich output for evcxr: saved with the notebook.
    pub fn evcxr_display(&self) {
        crate::show::display_html(&self.html);
    }
}

/// Stops every dashboard of this kernel.
pub fn stop_all() {
    registry::stop_all();
}

/// A live dashboard of a query's progress (input and processed rows/s, batch duration,
/// watermark, time per sink, dead letters, status), shown in the cell's output; it keeps
/// updating while the cell's kernel runs other cells. See [`crate::show::dashboard`].
pub fn query_dashboard(job: &StreamingQuery) -> Result<DashboardHandle> {
    Dashboard::new(format!("Query {}", job.name()))
        .query(job)
        .start()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::sync::atomic::AtomicU64;

    /// A plain HTTP/1.0 GET on loopback: (status line, body).
    fn get(port: u16, path: &str) -> std::io::Result<(String, String)> {
        get_as(port, path, "127.0.0.1")
    }

    /// A GET with the given Host header.
    fn get_as(port: u16, path: &str, host: &str) -> std::io::Result<(String, String)> {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n")?;
        let mut text = String::new();
        s.read_to_string(&mut text)?;
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        Ok((
            head.lines().next().unwrap_or_default().to_string(),
            body.to_string(),
        ))
    }

    fn wait_for(mut ok: impl FnMut() -> bool) -> bool {
        let t = std::time::Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            if ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    #[test]
    fn serves_page_panel_and_json_from_the_sources_then_stops() {
        let n = Arc::new(AtomicU64::new(0));
        let n2 = n.clone();
        let d = Dashboard::new("dashboard unit test")
            .every(Duration::from_millis(100))
            .lines("lines", move || {
                Ok(vec![format!("line {}", n2.fetch_add(1, Ordering::SeqCst))])
            })
            .bars("totals", || {
                Ok(vec![("USA".into(), 2.0), ("India".into(), 3.0)])
            })
            .series("sums", || {
                Ok(vec![(0, "FAQ".into(), 1.0), (5, "FAQ".into(), 2.0)])
            })
            .start()
            .expect("starts");
        assert!(
            wait_for(|| d.panels().lines_seen >= 2),
            "the sampler reads the sources"
        );
        let (status, page) = get(d.port(), "/").expect("page");
        assert!(status.contains("200"), "{status}");
        assert!(
            page.contains("<script>")
                && page.contains("dashboard unit test")
                && page.contains("<svg"),
            "{page}"
        );
        let (_, panel) = get(d.port(), "/panel").expect("panel");
        assert!(
            panel.contains("id=\"bde-bars-total\">5</span>") && panel.contains("line 1"),
            "{panel}"
        );
        let (_, json) = get(d.port(), "/data.json").expect("json");
        let j: serde_json::Value = serde_json::from_str(&json).expect("json parses");
        assert_eq!(j["bars_total"], 5.0);
        assert!(get(d.port(), "/nothing").expect("404").0.contains("404"));
        assert!(d
            .to_html()
            .contains(&format!("<iframe src=\"http://127.0.0.1:{}/\"", d.port())));
        d.stop();
        assert!(
            wait_for(|| get(d.port(), "/").is_err()),
            "the port closes after stop"
        );
        let seen = n.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            n.load(Ordering::SeqCst),
            seen,
            "the sampler stopped reading"
        );
    }

    #[test]
    fn a_failing_source_shows_its_error_and_keeps_the_others() {
        let d = Dashboard::new("dashboard error test")
            .every(Duration::from_millis(100))
            .bars("totals", || {
                Err(Error::invalid("Redis at 127.0.0.1:1 is down"))
            })
            .lines("lines", || Ok(vec!["x".into()]))
            .start()
            .expect("starts");
        assert!(wait_for(|| d.panels().lines_seen >= 1));
        let p = d.panels();
        assert!(
            p.errors
                .iter()
                .any(|e| e.contains("totals") && e.contains("127.0.0.1:1")),
            "{:?}",
            p.errors
        );
        d.stop();
    }

    #[test]
    fn a_second_dashboard_with_the_same_title_replaces_the_first() {
        let a = Dashboard::new("dashboard replace test").start().expect("a");
        let b = Dashboard::new("dashboard replace test").start().expect("b");
        assert!(!a.is_running() && b.is_running());
        assert!(
            wait_for(|| get(a.port(), "/").is_err()),
            "the first one's port closed"
        );
        assert!(get(b.port(), "/").is_ok());
        b.stop();
    }

    #[test]
    fn answers_only_requests_addressed_to_loopback() {
        let d = Dashboard::new("dashboard host test")
            .start()
            .expect("starts");
        let port = d.port();
        let (ok, _) = get_as(port, "/data.json", &format!("localhost:{port}")).expect("answers");
        assert!(ok.contains("200"), "what jupyter-server-proxy sends: {ok}");
        let (bad, body) =
            get_as(port, "/data.json", &format!("rebind.example:{port}")).expect("answers");
        assert!(
            bad.contains("421") && !body.contains("panels"),
            "{bad} {body}"
        );
        d.stop();
    }

    #[test]
    fn a_reader_that_never_reads_holds_up_no_one_and_stop_still_ends_it() {
        let d = Dashboard::new("dashboard slow reader test")
            .start()
            .expect("starts");
        // A connection that sends half a request and then nothing.
        let mut idle = std::net::TcpStream::connect(("127.0.0.1", d.port())).expect("connects");
        write!(idle, "GET / HTTP/1.1\r\n").expect("writes");
        let (status, _) = get(d.port(), "/panel").expect("another request is answered");
        assert!(status.contains("200"), "{status}");
        d.stop();
        assert!(
            wait_for(|| get(d.port(), "/").is_err()),
            "the port closes after stop although a connection hangs"
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_registry_is_private_to_the_user() {
        use std::os::unix::fs::PermissionsExt;
        let d = Dashboard::new("dashboard registry test")
            .start()
            .expect("starts");
        let dir = registry::folder().expect("a registry folder");
        assert!(!dir.starts_with("/tmp/bde_dashboards"), "{}", dir.display());
        let mode = |p: &std::path::Path| {
            std::fs::metadata(p).expect("exists").permissions().mode() & 0o777
        };
        assert_eq!(mode(&dir), 0o700, "{}", dir.display());
        assert_eq!(mode(dir.parent().expect("root")), 0o700);
        let files: Vec<_> = std::fs::read_dir(&dir)
            .expect("lists")
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(!files.is_empty());
        for f in files {
            assert_eq!(mode(&f), 0o600, "{}", f.display());
        }
        d.stop();
    }

    #[test]
    fn a_snapshot_is_static_html_of_the_last_view() {
        let d = Dashboard::new("dashboard snapshot test")
            .every(Duration::from_millis(100))
            .bars("totals", || Ok(vec![("USA".into(), 2.0)]))
            .lines("lines", || Ok(vec!["EVCXR_END_CONTENT".into()]))
            .start()
            .expect("starts");
        assert!(wait_for(|| d.panels().lines_seen >= 1));
        let snap = d.stop();
        let h = snap.to_html();
        assert!(
            h.contains("class=\"bde-snapshot\"") && h.contains("<svg") && h.contains("USA"),
            "{h}"
        );
        assert!(!h.contains("<script"), "static: no script");
        assert!(
            h.lines().all(|l| !l.contains("EVCXR_")),
            "no line reads as evcxr's markers"
        );
        assert!(d
            .to_html()
            .contains(&format!("var via = base + \"{}\"", d.proxy_path())));
    }

    #[test]
    fn stop_needs_the_dashboards_token() {
        let d = Dashboard::new("dashboard token test")
            .start()
            .expect("starts");
        assert!(get(d.port(), "/stop?token=wrong")
            .expect("answers")
            .0
            .contains("403"));
        assert!(d.is_running());
        d.stop();
    }
}
