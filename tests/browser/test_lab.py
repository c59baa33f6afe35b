"""The notebooks as users see them: JupyterLab in a real browser (Debian's Chromium driven by
Playwright for Python, no browser download).

Usage: .venv/bin/python tests/browser/test_lab.py [--only nb2|monitor|live|explore]

The test starts its own JupyterLab on a free port of 127.0.0.1 with a random token (root-safe:
--allow-root when run as root), with autosave off so the notebooks under notebooks/ are never
written, and then:
  nb2      opens notebook 2 (batch), runs all cells through the UI (Run > Run All Cells), waits
           for the last cell, and checks the rendered page: no error output, an HTML table with
           the course's global-stock columns, the chart's SVG. Screenshot build/browser/nb2.png.
  monitor  opens notebook 5 (the monitor) in the browser while notebooks 4 (job) and 3
           (generator) run headless beside it, as the chapter-4 demo does; presses ■ (Kernel >
           Interrupt Kernel) once the monitor loop printed a cart line: the loop must say
           "interrupted (■)" and end with its report (heading, tables, SVG), and the cells after
           it (they use variables defined before) run in the same kernel: visit_stats as a frame
           table with column types, the dashboard's snapshot; notebook 4's job runs on to its own
           stop and check. Screenshots build/browser/interrupt-monitor.png, monitor.png, frame-table.png.
  explore  opens notebook 99 (explore the state, after the course), runs all cells through the UI
           and checks the rendered tables of tables(), lag() and redis_keys() and the chart.
           Screenshots build/browser/explore.png (tables) and explore-lag.png.
  live     opens a scratch notebook (build/browser/live_dashboard.ipynb, written by the test with
           its own topics, key and database) that starts the analytics query and a visits
           generator and shows `Monitor::dashboard()` and `query_dashboard(&job)`: two screenshots of
           the dashboard a few seconds apart while visits flow must show different country
           totals (build/browser/dashboard-1.png, dashboard-2.png), the iframe on Jupyter's
           address <base URL>proxy/<port>/v/<key>/ (JupyterLab runs under --ServerApp.base_url=/course/);
           ■ during `generator.wait` returns within seconds and the next cell sees the job running
           and the generator sending (interrupt-wait.png); after the test asks the notebook to stop
           the job, the dashboard must say so (dashboard-stopped.png), and its snapshot is in the
           saved notebook file (dashboard-snapshot.png); last, a loop of the cell's own: the first
           ■ changes nothing, a second one 3 s later ends the cells' process and says so
           (interrupt-kill.png).
The checks read rendered outputs (tables, SVG, iframes), not cell sources. Prints one line per
check and "N passed, N failed"; exit code 1 on any failure. Environment: BDE_CHROMIUM (default
/usr/bin/chromium), BDE_BROWSER_TIMEOUT (seconds for one notebook, default 1800).
"""

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "build" / "browser"
VENV = REPO / ".venv"
sys.path.insert(0, str(REPO / "kernel"))
sys.path.insert(0, str(REPO / "tests"))

NB2 = "code_03_XX_Spark_BDE_Batch_Data_Engg.ipynb"
NB3 = "code_04_03_Spark_BDE_Generate a visits stream.ipynb"
NB4 = "code_04_04_Spark_BDE_Build_a_streaming_analytics_job.ipynb"
NB5 = "code_04_05_Spark_BDE_Execute_the_pipeline.ipynb"
NB99 = "code_99_Explore_the_state.ipynb"
# The course's global stock columns (notebook 2's summary table).
STOCK_COLUMNS = ["STOCK_DATE", "ITEM_NAME", "TOTAL_REC", "OPENING_STOCK", "RECEIPTS", "ISSUES", "CLOSING_STOCK", "CLOSING_VALUE"]
CHROMIUM = os.environ.get("BDE_CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium's own connections are refused and its start stalls.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
NOTEBOOK_TIMEOUT = int(os.environ.get("BDE_BROWSER_TIMEOUT", "1800"))


class Failed(Exception):
    """A check that did not hold."""


def log(msg):
    print(f"[browser] {msg}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A JupyterLab server of this test: free port, random token, autosave off, own settings."""

    def __init__(self):
        self.port = free_port()
        self.token = secrets.token_hex(24)
        # Under a base URL, as JupyterHub and Binder serve it: the dashboard must be reached
        # through Jupyter's own address (jupyter-server-proxy), relative to this base.
        self.base_url = "/course/"
        self.base = f"http://127.0.0.1:{self.port}/course"
        settings = OUT / "lab-settings"
        for plugin, values in {
            "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
            # Render every cell (no virtual scrolling), so the test sees all outputs.
            "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
            "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
        }.items():
            f = settings / f"{plugin}.jupyterlab-settings"
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(json.dumps(values))
        # A fresh workspace: JupyterLab would otherwise reopen (and start kernels for) the
        # notebooks of the last run.
        shutil.rmtree(OUT / "lab-workspaces", ignore_errors=True)
        (OUT / "lab-workspaces").mkdir(parents=True, exist_ok=True)
        args = [str(VENV / "bin" / "jupyter"), "lab", "--ip", "127.0.0.1", f"--port={self.port}",
                "--ServerApp.port_retries=0", "--no-browser",
                f"--ServerApp.base_url={self.base_url}",
                f"--ServerApp.root_dir={REPO}", f"--LabApp.user_settings_dir={settings}",
                f"--LabApp.workspaces_dir={OUT / 'lab-workspaces'}"]
        if os.geteuid() == 0:
            args.append("--allow-root")  # JupyterLab refuses root without it
        self.log_path = OUT / "jupyterlab.log"
        # JupyterLab prints its URL with the token: the log is readable by this user only (as
        # kernel/lab.sh keeps its own).
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        self.log_file = os.fdopen(fd, "w")
        # The token goes through the environment, not the command line (where ps shows it).
        env = {**os.environ, "BDE_FAST": "1", "JUPYTER_TOKEN": self.token}
        self.proc = subprocess.Popen(args, stdout=self.log_file, stderr=subprocess.STDOUT, env=env,
                                     cwd=REPO, start_new_session=True)
        deadline = time.time() + 90
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise Failed(f"JupyterLab exited at start (code {self.proc.returncode}): {self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.base}/api/status?token={self.token}", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        self.stop()
        raise Failed(f"JupyterLab did not answer on {self.base} within 90 s: {self.log_tail()}")

    def log_tail(self):
        try:
            return self.log_path.read_text()[-1500:]
        except OSError:
            return "(no log)"

    def api(self, method, path, body=None):
        req = urllib.request.Request(f"{self.base}{path}", method=method, data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            data = r.read()
            return json.loads(data) if data else None

    def kernelspecs(self):
        return self.api("GET", "/api/kernelspecs")["kernelspecs"]

    def shutdown_kernels(self):
        for k in self.api("GET", "/api/kernels") or []:
            try:
                self.api("DELETE", f"/api/kernels/{k['id']}")
            except OSError:
                pass

    def url(self, path):
        # reset: a clean workspace with only this notebook open (and active).
        return f"{self.base}/lab/tree/{urllib.parse.quote(path)}?reset&token={self.token}"

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.api("POST", "/api/shutdown")
            except OSError:
                pass
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, signal.SIGKILL)
        self.log_file.close()


# ------------------------------------------------------------------------ notebook in the UI

def open_notebook(page, lab, path):
    page.goto(lab.url(path))
    page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell").first.wait_for(timeout=120_000)
    # The kernel name in the notebook's toolbar: the kernelspec was found (no "select kernel" dialog).
    page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-NotebookPanel-toolbar", has_text="Rust").first.wait_for(timeout=60_000)
    active = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current .lm-TabBar-tabLabel").first.text_content(timeout=10_000) or ""
    if active.strip() != Path(path).name:
        raise Failed(f"the active tab is {active!r}, not {Path(path).name!r}")


def run_all(page):
    """Run > Run All Cells once the kernel is idle; clicks again if no cell started within 30 s."""
    indicator = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator"
    t0 = time.time()
    while page.locator(f"{indicator}[data-status='idle']").count() == 0:
        if time.time() - t0 > 180:
            raise Failed(f"the kernel did not become idle within 180 s (status {page.locator(indicator).first.get_attribute('data-status')})")
        time.sleep(0.5)
    for _ in range(3):
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        t1 = time.time()
        while time.time() - t1 < 30:
            if any("*" in p or re.search(r"\[\d+\]", p) for p in prompts(page)):
                return
            time.sleep(0.5)
    raise Failed(f"Run All Cells started no cell (prompts {prompts(page)[:5]})")


def prompts(page):
    return page.eval_on_selector_all(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt", "els => els.map(e => e.textContent.trim())")


def error_outputs(page):
    """Texts of rendered error outputs (tracebacks, stderr, panics) of the visible notebook."""
    return page.eval_on_selector_all(
        ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output",
        """els => els.filter(e => e.getAttribute('data-mime-type') === 'application/vnd.jupyter.stderr'
                           || e.textContent.includes('panicked at'))
                     .map(e => e.textContent.trim().slice(0, 400))""")


def wait_last_cell(page, timeout, what):
    """Waits until the last code cell shows an execution count; fails at once on an error output."""
    t0 = time.time()
    started = False
    while time.time() - t0 < timeout:
        p = prompts(page)
        started |= any("*" in x for x in p)
        errs = error_outputs(page)
        if errs and not any("*" in x for x in p):
            raise Failed(f"{what}: a cell shows an error: {errs[0]}")
        if started and p and re.search(r"\[\d+\]", p[-1]) and not any("*" in x for x in p):
            if errs:
                raise Failed(f"{what}: a cell shows an error: {errs[0]}")
            return time.time() - t0
        time.sleep(1)
    raise Failed(f"{what}: the last cell did not finish within {timeout} s (prompts {prompts(page)[-5:]})")


def interrupt_kernel(page):
    """Kernel > Interrupt Kernel (what the toolbar's ■ does)."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Kernel$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Interrupt Kernel$")).click()


def cell_output_text(page, index):
    """The rendered output text of the code cell `index` (0-based among code cells)."""
    return page.eval_on_selector_all(
        ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell",
        f"els => els[{index}] ? (els[{index}].querySelector('.jp-OutputArea') || {{textContent: ''}}).textContent : ''")


def wait_output(page, index, pattern, timeout, what):
    t0 = time.time()
    while time.time() - t0 < timeout:
        text = cell_output_text(page, index)
        m = re.search(pattern, text)
        if m:
            return m, time.time() - t0
        time.sleep(0.2)
    raise Failed(f"{what}: cell {index} shows no {pattern!r} within {timeout} s: {cell_output_text(page, index)[-600:]!r}")


def save_notebook(page):
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^File$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Save Notebook$")).click()


def rendered_tables(page):
    return page.eval_on_selector_all(
        ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output table",
        "els => els.map(t => Array.from(t.querySelectorAll('th')).map(h => h.textContent.trim()))")


def check_nb2(page, lab):
    open_notebook(page, lab, f"notebooks/{NB2}")
    run_all(page)
    secs = wait_last_cell(page, NOTEBOOK_TIMEOUT, "notebook 2")
    tables = rendered_tables(page)
    if not any(all(c in heads for c in STOCK_COLUMNS) for heads in tables):
        raise Failed(f"notebook 2: no rendered table with the columns {STOCK_COLUMNS}; tables: {tables}")
    charts = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output svg, "
                          ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-RenderedSVG img").filter(visible=True)
    if charts.count() < 1:
        raise Failed("notebook 2: no visible rendered chart (SVG) in the outputs")
    charts.last.scroll_into_view_if_needed(timeout=10_000)
    page.screenshot(path=str(OUT / "nb2.png"))
    return f"notebook 2 ran all cells in the UI in {secs:.0f} s: table with {len(STOCK_COLUMNS)} course columns, chart SVG, no error"


# ------------------------------------------------------------------------ monitor (chapter-4 demo)

def check_monitor(page, lab):
    import run_notebooks as R  # the headless runner (nbclient), for the job and the generator

    open_notebook(page, lab, f"notebooks/{NB5}")
    run_all(page)
    results = {}

    def headless(name, delay):
        time.sleep(delay)
        try:
            results[name] = R.run_one(name, {"BDE_FAST": "1"}, out=OUT / "notebooks")[:3]
        except Exception:
            results[name] = (name, 0.0, [traceback.format_exc()])

    # As the course's demo: the monitor first, then the job, then the generator (it waits for the
    # job). The generator starts only once the monitor loop (code cell 4) printed its first
    # refresh: its carts consumer (code cell 3) is then open at the topic's end, whatever each
    # kernel's `:dep` took, so every cart line of this run reaches it.
    threads = [threading.Thread(target=headless, args=(NB4, 0))]
    threads[0].start()
    stopped_at = None
    try:
        # The first refresh prints the sections that have data (Redis and MariaDB keep earlier
        # runs' figures) or, with none, "waiting for data…".
        wait_output(page, 4, r"waiting for data|Stats from|Shopping Cart from", NOTEBOOK_TIMEOUT,
                    "notebook 5's monitor (first refresh)")
        threads.append(threading.Thread(target=headless, args=(NB3, 0)))
        threads[-1].start()
        # ■ while the monitor loop runs, once it printed a cart line: the loop must end within a
        # second with what it has, and the cells after it (which use `settings` and `dashboard`,
        # defined before) run in the same kernel.
        wait_output(page, 4, r"\w+,ShoppingCart,\d{4}-\d\d-\d\d", NOTEBOOK_TIMEOUT, "notebook 5's monitor (a cart line)")
        page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell").nth(4).scroll_into_view_if_needed()
        interrupt_kernel(page)
        stopped_at = time.time()
        _, took = wait_output(page, 4, r"interrupted \(■\)", 30, "notebook 5's monitor after ■")
        page.screenshot(path=str(OUT / "interrupt-monitor.png"))
        log(f"■ during the monitor loop: 'interrupted' shown {took:.1f} s after the press")
        secs = wait_last_cell(page, NOTEBOOK_TIMEOUT, "notebook 5")
    finally:
        for t in threads:
            t.join()
    for name, secs_h, problems in results.values():
        if problems:
            raise Failed(f"{name} (headless beside the monitor): " + "; ".join(problems)[:800])
    if not stopped_at:
        raise Failed("notebook 5: the monitor loop was not seen running, so ■ was never pressed")
    heads = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output h3", has_text="Pipeline monitor")
    if heads.count() < 1:
        raise Failed("notebook 5: the monitor's report (heading 'Pipeline monitor …') is not rendered")
    text = heads.first.text_content()
    if not re.search(r"Pipeline monitor: \d+ refreshes, [1-9]\d* cart lines", text or ""):
        raise Failed(f"notebook 5: the report saw no cart line: {text!r}")
    report = heads.first.locator("xpath=ancestor::div[contains(@class, 'bde-report')][1]")
    if report.locator("table").count() < 2 or report.locator("svg").count() < 2:
        raise Failed("notebook 5: the monitor's report lacks its tables or charts")
    heads.first.scroll_into_view_if_needed()
    page.screenshot(path=str(OUT / "monitor.png"))
    # The cells after the interrupted loop ran in the same kernel: the frame renders as a table
    # with column types, the snapshot of the dashboard started before is there.
    frames = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .bde-frame", has=page.locator("td.dtype"))
    if frames.count() < 1 or "INTERVAL_TIMESTAMP" not in (frames.first.text_content() or ""):
        raise Failed("notebook 5: the visit_stats frame is not rendered as a table with column types")
    frame_types = frames.first.locator("td.dtype").all_text_contents()
    if page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .bde-snapshot").count() < 1:
        raise Failed("notebook 5: no dashboard snapshot after the interrupted loop (the `dashboard` variable was lost?)")
    frames.first.scroll_into_view_if_needed()
    page.screenshot(path=str(OUT / "frame-table.png"))
    return (f"notebook 5 in the UI beside notebooks 4 and 3: ■ during the monitor loop ended it with "
            f"report '{text}'; the cells after it ran in the same kernel (frame table with types {frame_types}, "
            f"dashboard snapshot); the job of notebook 4 ran on to its own stop and check ({secs:.0f} s)")


# ------------------------------------------------------------------------ live dashboard

def live_notebook(tag):
    """A scratch notebook: own topics, Redis key and database; the query and a visits generator;
    both dashboards; then it waits for the test's flag files to stop the job and to clean up."""
    import nbformat
    flag_stop, flag_clean = OUT / f"live-{tag}.stop", OUT / f"live-{tag}.clean"
    cells = [
        f':dep bde_kit = {{ path = "{REPO}" }}\nuse bde_kit::prelude::*;',
        f'''let tag = "{tag}";
// The settings of this kernel (the job's and the monitor's) use this checkpoint root.
// (set before any thread of the kit reads the environment; evcxr compiles cells as edition 2024)
unsafe {{ std::env::set_var("BDE_CHECKPOINT_DIR", std::env::temp_dir().join(format!("bde_browser_cp_{{tag}}"))); }}
let settings = Settings::from_env();
let visits = format!("bde_test.browser_visits.{{tag}}");
let carts = format!("bde_test.browser_carts.{{tag}}");
let key = format!("bde_test:browser_countries:{{tag}}");
let db = format!("bde_test_browser_{{tag}}");
io::kafka::create_topics(&settings, &[&visits, &carts], 1)?;
io::mariadb::execute(&settings, None, &format!("CREATE DATABASE IF NOT EXISTS `{{db}}`"))?;
io::mariadb::execute(&settings, None, &course::analytics::visit_stats_ddl(&db)?)?;
fn wait_for_flag(path: &str) {{
    let t = std::time::Instant::now();
    while !std::path::Path::new(path).exists() && t.elapsed() < Duration::from_secs(900) {{
        std::thread::sleep(Duration::from_millis(200));
    }}
}}''',
        '''let job = {
    use bde_kit::course::visit::Visit;
    let visits_in = Stream::<Visit>::read(KafkaSource::new(&visits).starting(Start::Earliest));
    let carts_out = visits_in
        .filter(|v| v.last_action == "ShoppingCart")
        .write(KafkaSink::new(&carts, |v: &Visit| {
            format!("{},{},{},{}", v.country, v.last_action, v.visit_date.format("%Y-%m-%d %H:%M:%S"), v.duration)
        }));
    let countries = visits_in.write(RedisZIncr::new(&key, |v: &Visit| v.country.clone(), |v: &Visit| v.duration as f64));
    let summaries = visits_in
        .with_watermark(Duration::from_secs(5))
        .window(Window::tumbling(Duration::from_secs(5)), |v| v.last_action.clone())
        .sum(|v| v.duration as i64)
        .write(course::analytics::visit_stats_writer(&db));
    Query::new(&format!("browser-analytics-{tag}"))
        .trigger(Trigger::every(Duration::from_secs(1)))
        .settings(settings.clone())
        .quiet(true)
        .start([carts_out, countries, summaries])?
};
let generator = course::visits::VisitGenerator::course(&settings).topic(visits.clone()).count(100_000).speed(0.05).start()?;''',
        'let dash = course::monitor::Monitor::course(&settings).names(&carts, &key, &db).until_job_stops(Some(job.name())).dashboard()?;\ndash.clone()',
        'query_dashboard(&job)?',
        # Code cell 5: a wait that would block for 15 minutes; the test presses ■ during it.
        '''let waited = generator.wait(Duration::from_secs(900));
println!("wait returned: {}", match &waited { Ok(_) => "the run ended".to_string(), Err(e) => e.to_string() });''',
        # Code cell 6: variables from before the ■ are there, and the background work goes on.
        '''let sent_before = generator.progress().0;
std::thread::sleep(Duration::from_secs(2));
println!("after ■: job {} with {} rows read; generator sent {} then {} visits", job.status(), job.summary().total_rows, sent_before, generator.progress().0);''',
        f'wait_for_flag("{flag_stop}");\ngenerator.stop();\nlet summary = job.stop()?;\nprintln!("job stopped after {{}} rows", summary.total_rows);',
        # Code cell 8: the dashboard's last figures, static, for the saved notebook.
        'dash.snapshot()',
        f'''wait_for_flag("{flag_clean}");
dash.stop();
bde_kit::show::dashboard::stop_all();
let _ = io::kafka::delete_topics(&settings, &[&visits, &carts, &format!("{{visits}}.dlq")]);
{{
    let mut keys = io::redis::keys(&settings, &format!("{{key}}*"))?;
    keys.push(key.clone());
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    io::redis::delete(&settings, &refs)?;
}}
io::mariadb::execute(&settings, None, &format!("DROP DATABASE IF EXISTS `{{db}}`"))?;
let _ = std::fs::remove_dir_all(&settings.checkpoint_dir);
println!("cleaned up {{tag}}");''',
        # Code cell 10: a loop of the user's own (no kit call): ■ twice ends the cells' process.
        'let survivor = 1;\nloop { std::thread::sleep(Duration::from_millis(100)); }',
    ]
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "rust", "display_name": "Rust (bde_kit)", "language": "rust"}
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    path = OUT / "live_dashboard.ipynb"
    nbformat.write(nb, path)
    return path, flag_stop, flag_clean


def dashboard_frame(page, title_prefix, timeout=NOTEBOOK_TIMEOUT):
    """The dashboard iframe of a cell output (element and frame); fails at once on an error output."""
    sel = f".jp-NotebookPanel:not(.lm-mod-hidden) iframe[title^='{title_prefix}']"
    t0 = time.time()
    while page.locator(sel).count() == 0:
        errs = error_outputs(page)
        if errs:
            raise Failed(f"live notebook: a cell shows an error before the dashboard '{title_prefix}': {errs[0]}")
        if time.time() - t0 > timeout:
            raise Failed(f"live notebook: no dashboard '{title_prefix}' in the outputs after {timeout} s (prompts {prompts(page)})")
        time.sleep(1)
    return page.locator(sel).first, page.frame_locator(sel).first


def number(locator):
    return float(re.sub(r"[^\d.]", "", locator.text_content(timeout=30_000) or "") or "nan")


def check_live(page, lab):
    tag = f"{os.getpid()}_{int(time.time())}"
    path, flag_stop, flag_clean = live_notebook(tag)
    try:
        page.set_viewport_size({"width": 1400, "height": 1300})  # the whole dashboard iframe in view
        open_notebook(page, lab, str(path.relative_to(REPO)))
        run_all(page)
        el, frame = dashboard_frame(page, "Pipeline monitor")
        el.scroll_into_view_if_needed()
        # The iframe goes through Jupyter's own address under its base URL (jupyter-server-proxy).
        box = el.locator("xpath=ancestor::div[contains(@class, 'bde-dashboard')][1]")
        t0 = time.time()
        while box.get_attribute("data-bde-via") != "proxy":
            if time.time() - t0 > 60:
                raise Failed(f"live dashboard: the iframe stayed on {el.get_attribute('src')!r} (not switched to Jupyter's address)")
            time.sleep(0.5)
        src = el.get_attribute("src") or ""
        if not re.fullmatch(r"/course/proxy/\d+/v/[0-9a-f]{16}/", src):
            raise Failed(f"live dashboard: the iframe's address {src!r} is not <base URL>proxy/<port>/v/<key>/")
        via_jupyter = page.request.get(f"{lab.base}{src[len('/course'):]}data.json", headers={"Authorization": f"token {lab.token}"})
        if via_jupyter.status != 200 or "panels" not in via_jupyter.text():
            raise Failed(f"live dashboard: {src}data.json through Jupyter answered {via_jupyter.status}")
        total = frame.locator("#bde-bars-total")
        # First shot once totals arrived, then a second one at least 3 s later with other totals.
        t0 = time.time()
        while number(total) <= 0:
            if time.time() - t0 > 300:
                raise Failed("live dashboard: no country total arrived within 300 s while visits flow")
            time.sleep(0.5)
        first = number(total)
        el.screenshot(path=str(OUT / "dashboard-1.png"))
        shot1 = time.time()
        time.sleep(3)
        while number(total) == first:
            if time.time() - shot1 > 120:
                raise Failed(f"live dashboard: the country total stayed {first} for 120 s while visits flow")
            time.sleep(0.5)
        second = number(total)
        el.screenshot(path=str(OUT / "dashboard-2.png"))
        gap = time.time() - shot1
        if frame.locator("#bde-bars svg").count() < 1 or frame.locator("#bde-progress").count() < 1:
            raise Failed("live dashboard: the bar chart SVG or the progress panel is missing")
        rows = number(frame.locator("#bde-total-rows"))
        if not rows > 0:
            raise Failed("live dashboard: the query's progress shows no rows read")
        job_el, job_frame = dashboard_frame(page, "Query browser-analytics")
        job_frame.locator("#bde-progress").wait_for(timeout=30_000)
        # ■ during generator.wait (code cell 5): it returns within a second with what it has, the
        # next cell uses the variables from before and sees the job and the generator running.
        wait_output(page, 5, r'\{"country"', 300, "generator.wait")
        interrupt_kernel(page)
        _, took = wait_output(page, 5, r"wait returned: interrupted \(■\): the wait for the generator", 30, "generator.wait after ■")
        m, _ = wait_output(page, 6, r"after ■: job (\w+) with (\d+) rows read; generator sent (\d+) then (\d+) visits", 120, "the cell after ■")
        if m.group(1) != "running" or not int(m.group(4)) > int(m.group(3)):
            raise Failed(f"after ■ the job or the generator stopped: {m.group(0)!r}")
        page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell").nth(6).scroll_into_view_if_needed()
        page.screenshot(path=str(OUT / "interrupt-wait.png"))
        after_wait = f"■ during generator.wait: returned {took:.1f} s after the press; then {m.group(0)!r}"
        # Stop the job through the notebook; the dashboard must say it stopped.
        flag_stop.write_text("stop")
        banner = frame.locator("#bde-query-state", has_text="has STOPPED")
        banner.wait_for(timeout=180_000)
        el.screenshot(path=str(OUT / "dashboard-stopped.png"))
        job_frame.locator("#bde-query-state", has_text="has STOPPED").wait_for(timeout=30_000)
        # The snapshot (code cell 8) is saved with the notebook.
        wait_output(page, 8, r"Snapshot of the dashboard", 120, "dashboard snapshot")
        save_notebook(page)
        t0 = time.time()
        while True:
            import nbformat
            saved = nbformat.read(path, as_version=4)
            snap = [o for o in saved.cells[8].get("outputs", []) if "bde-snapshot" in str(o.get("data", {}).get("text/html", ""))]
            if snap:
                break
            if time.time() - t0 > 30:
                raise Failed("live dashboard: the saved notebook holds no snapshot output in cell 8")
            time.sleep(0.5)
        snap_html = str(snap[0]["data"]["text/html"])
        if "<svg" not in snap_html or "has STOPPED" not in snap_html:
            raise Failed("live dashboard: the saved snapshot lacks the charts' SVG or the stopped banner")
        page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .bde-snapshot").first.scroll_into_view_if_needed()
        page.screenshot(path=str(OUT / "dashboard-snapshot.png"))
        flag_clean.write_text("clean")
        wait_output(page, 9, r"cleaned up", 300, "live notebook clean-up")
        # A loop of the user's own (code cell 10): the first ■ is noticed by no kit call; a second
        # one 3 s later ends the cells' process, and the output says so.
        time.sleep(2)
        interrupt_kernel(page)
        time.sleep(3)
        if "pressed again" in cell_output_text(page, 10):
            raise Failed("the first ■ on a user's own loop ended the process")
        interrupt_kernel(page)
        _, took_kill = wait_output(page, 10, r"pressed again while no kit call runs", 30, "second ■ on a user's own loop")
        page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell").nth(10).scroll_into_view_if_needed()
        page.screenshot(path=str(OUT / "interrupt-kill.png"))
        return (f"live dashboard through Jupyter's address {src} (base URL /course/): country total {first:.0f} then {second:.0f} "
                f"{gap:.1f} s later while visits flow; progress rows {rows:.0f}; 'has STOPPED' shown after the job stopped; "
                f"snapshot with SVG saved in the notebook file; {after_wait}; a second ■ on a user's own loop ended the "
                f"cells' process and said so ({took_kill:.1f} s)")
    finally:
        flag_stop.write_text("stop")
        flag_clean.write_text("clean")


# ------------------------------------------------------------------------ explore (notebook 99)

EXPLORE_TABLES = {"tables()": ["schema", "table", "engine", "rows", "bytes", "size"],
                  "lag()": ["query", "topic", "partition", "checkpoint offset", "end offset", "behind"],
                  "redis_keys()": ["namespace", "key", "type", "ttl_s", "memory_bytes", "length"]}


def check_explore(page, lab):
    open_notebook(page, lab, f"notebooks/{NB99}")
    run_all(page)
    secs = wait_last_cell(page, NOTEBOOK_TIMEOUT, "notebook 99")
    tables = rendered_tables(page)
    for call, columns in EXPLORE_TABLES.items():
        if not any(heads[:len(columns)] == columns for heads in tables):
            raise Failed(f"notebook 99: no rendered {call} table with the columns {columns}; tables: {tables}")
    panel = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output"
    if page.locator(f"{panel} svg, {panel} .jp-RenderedSVG img").filter(visible=True).count() < 1:
        raise Failed("notebook 99: no visible chart (SVG) from the query")
    first = page.locator(f"{panel} .bde-explore h3").first
    first.scroll_into_view_if_needed(timeout=10_000)
    page.screenshot(path=str(OUT / "explore.png"))
    page.locator(f"{panel} .bde-explore h3", has_text="query checkpoints").first.scroll_into_view_if_needed(timeout=10_000)
    page.screenshot(path=str(OUT / "explore-lag.png"))
    return f"notebook 99 ran all cells in the UI in {secs:.0f} s: tables(), lag(), redis_keys() tables and the chart rendered"


CHECKS = {"nb2": check_nb2, "monitor": check_monitor, "live": check_live, "explore": check_explore}


def main(argv):
    only = [argv[i + 1] for i, a in enumerate(argv) if a == "--only" and i + 1 < len(argv)]
    names = [n for n in CHECKS if not only or n in only]
    OUT.mkdir(parents=True, exist_ok=True)
    for old in [*OUT.glob("*.png"), *OUT.glob("live-*.stop"), *OUT.glob("live-*.clean")]:
        old.unlink()
    if not Path(CHROMIUM).exists():
        print(f"FAIL browser: {CHROMIUM} not found: install Debian's chromium (kernel/setup.sh does) or set BDE_CHROMIUM")
        return 1
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("FAIL browser: Playwright for Python is missing: run kernel/setup.sh (requirements-dev.txt)")
        return 1
    passed, failed = 0, 0
    t_all = time.time()
    try:
        lab = Lab()
    except Failed as e:
        print(f"FAIL JupyterLab: {e}")
        return 1
    try:
        if "rust" not in lab.kernelspecs():
            print(f"FAIL JupyterLab: the Rust kernelspec is not registered (kernelspecs: {sorted(lab.kernelspecs())}): run kernel/setup.sh")
            return 1
        log(f"JupyterLab on {lab.base} (log {lab.log_path.relative_to(REPO)})")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                for name in names:
                    page = browser.new_page(viewport={"width": 1400, "height": 1000})
                    t0 = time.time()
                    try:
                        msg = CHECKS[name](page, lab)
                        passed += 1
                        print(f"ok   {name} ({time.time() - t0:.0f} s): {msg}", flush=True)
                    except Exception as e:  # a failed check or a Playwright timeout
                        failed += 1
                        try:
                            page.screenshot(path=str(OUT / f"{name}-failed.png"))
                            texts = page.eval_on_selector_all(
                                ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell",
                                "els => els.map(c => (c.querySelector('.jp-InputPrompt')||{}).textContent + ' ' + "
                                "(c.querySelector('.jp-OutputArea')||{textContent:''}).textContent.slice(0, 3000))")
                            (OUT / f"{name}-failed-outputs.txt").write_text("\n---\n".join(texts))
                        except Exception:
                            pass
                        detail = str(e) if isinstance(e, Failed) else f"{type(e).__name__}: {e}"
                        print(f"FAIL {name} ({time.time() - t0:.0f} s): {detail[:1500]}", flush=True)
                    finally:
                        page.close()
                        lab.shutdown_kernels()
            finally:
                browser.close()
    finally:
        lab.stop()
    shots = sorted(p.name for p in OUT.glob("*.png"))
    print(f"screenshots in {OUT.relative_to(REPO)}/: {', '.join(shots)}")
    print(f"{passed} passed, {failed} failed ({time.time() - t_all:.0f} s)")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
