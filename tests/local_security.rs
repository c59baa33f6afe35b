//! Local security of the set-up scripts (issue 19, item 9), run for real:
//! - `kernel/services.sh init-mariadb` makes a data folder without the `test` database and without
//!   anonymous accounts, and `check-accounts` removes anonymous accounts that an earlier set-up made
//!   but leaves (and reports) those of a server it did not initialise. Each test runs its own
//!   throwaway MariaDB server (`--skip-networking`, its own socket) in a folder of its own, so the
//!   machine's server is never touched. Needs root (as `kernel/setup.sh` does).
//! - `kernel/lab.sh` gives JupyterLab its token through the environment: no process's command line
//!   carries it, and the token still opens the server.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn unique(prefix: &str) -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    )
}

/// One throwaway server at a time: two `mariadb-install-db` bootstraps at once can fail
/// (seen once in 18 runs: "Unknown table 'mysql.tmp_user_sys'").
static SERVERS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn assert_root() {
    let uid = Command::new("id").arg("-u").output().expect("id -u");
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "these tests start MariaDB servers of their own: run them as root (as kernel/test.sh does)"
    );
}

/// `bash kernel/services.sh ARGS` with its run folder in `run`: (success, stdout + stderr).
fn services(run: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("bash")
        .arg(repo().join("kernel/services.sh"))
        .args(args)
        .env("BDE_RUN_DIR", run)
        .output()
        .expect("run kernel/services.sh");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// A throwaway MariaDB server on a socket of its own, stopped and removed on drop.
struct Server {
    root: PathBuf,
    data: PathBuf,
    socket: PathBuf,
    run: PathBuf,
    child: Option<Child>,
}

impl Server {
    fn folder() -> Server {
        let root = std::env::temp_dir().join(unique("bde_test_mariadb"));
        std::fs::create_dir_all(&root).expect("test folder");
        // mariadbd runs as mysql: it needs to reach its data folder and socket.
        let ok = Command::new("chown")
            .args(["mysql:mysql"])
            .arg(&root)
            .status()
            .expect("chown");
        assert!(ok.success());
        Server {
            data: root.join("data"),
            socket: root.join("mysqld.sock"),
            run: root.join("run"),
            root,
            child: None,
        }
    }

    fn start(&mut self) {
        let child = Command::new("mariadbd")
            .arg("--no-defaults")
            .arg("--user=mysql")
            .arg(format!("--datadir={}", self.data.display()))
            .arg(format!("--socket={}", self.socket.display()))
            .arg(format!(
                "--pid-file={}",
                self.root.join("mysqld.pid").display()
            ))
            .arg(format!(
                "--log-error={}",
                self.root.join("mysqld.err").display()
            ))
            .arg("--skip-networking")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mariadbd");
        self.child = Some(child);
        let t = Instant::now();
        while self.sql("SELECT 1").is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "the test server did not answer on {}: {}",
                self.socket.display(),
                std::fs::read_to_string(self.root.join("mysqld.err")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// One query through root's socket login: its rows, tab-separated.
    fn sql(&self, q: &str) -> Result<String, String> {
        let out = Command::new("mariadb")
            .arg("--protocol=socket")
            .arg("-S")
            .arg(&self.socket)
            .args(["-uroot", "-N", "-B", "-e", q])
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    fn anonymous_accounts(&self) -> usize {
        self.sql("SELECT COUNT(*) FROM mysql.user WHERE user = ''")
            .expect("count")
            .parse()
            .expect("a number")
    }

    fn check_accounts(&self) -> (bool, String) {
        services(
            &self.run,
            &[
                "check-accounts",
                &self.socket.to_string_lossy(),
                &self.data.to_string_lossy(),
            ],
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(30) {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

#[test]
fn a_server_the_set_up_initialises_has_no_test_database_and_no_anonymous_accounts() {
    assert_root();
    let _one = SERVERS.lock().unwrap_or_else(|e| e.into_inner());
    let mut s = Server::folder();
    let (ok, out) = services(&s.run, &["init-mariadb", &s.data.to_string_lossy()]);
    assert!(
        ok,
        "{out}\n{}",
        std::fs::read_to_string(s.run.join("mariadb.log")).unwrap_or_default()
    );
    s.start();
    assert_eq!(s.anonymous_accounts(), 0);
    assert_eq!(
        s.sql("SHOW DATABASES LIKE 'test'").expect("show"),
        "",
        "no test database"
    );
    assert_eq!(
        s.sql("SELECT COUNT(*) FROM mysql.db WHERE db LIKE 'test%'")
            .expect("grants"),
        "0",
        "nobody is granted the test databases"
    );
    let (ok, out) = s.check_accounts();
    assert!(ok && out.contains("no anonymous accounts"), "{out}");
}

#[test]
fn anonymous_accounts_are_removed_where_the_set_up_made_them_and_reported_elsewhere() {
    assert_root();
    let _one = SERVERS.lock().unwrap_or_else(|e| e.into_inner());
    let mut s = Server::folder();
    // What mariadb-install-db does without --skip-test-db (and what the set-up did before).
    let out = Command::new("mariadb-install-db")
        .arg("--user=mysql")
        .arg(format!("--datadir={}", s.data.display()))
        .output()
        .expect("mariadb-install-db");
    assert!(out.status.success(), "{out:?}");
    let install_log = String::from_utf8_lossy(&out.stdout).into_owned();
    s.start();
    let made = s.anonymous_accounts();
    assert!(made >= 1, "mariadb-install-db made anonymous accounts");

    // A server this set-up did not initialise: reported, left as it is.
    let (ok, out) = s.check_accounts();
    assert!(ok, "{out}");
    assert!(
        out.contains("did not create") && out.contains("''@'localhost'"),
        "{out}"
    );
    assert_eq!(s.anonymous_accounts(), made, "left as they are");

    // The same folder initialised by an earlier set-up (its log has mariadb-install-db's output).
    std::fs::create_dir_all(&s.run).expect("run folder");
    std::fs::write(s.run.join("mariadb.log"), install_log).expect("log");
    let (ok, out) = s.check_accounts();
    assert!(
        ok && out.contains("removed the anonymous accounts"),
        "{out}"
    );
    assert_eq!(s.anonymous_accounts(), 0);
    assert_eq!(
        s.sql("SELECT COUNT(*) FROM mysql.user WHERE user = 'root'")
            .expect("root"),
        "1",
        "root is left as it is"
    );
}

/// A free port on loopback.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The command lines of every process on the machine.
fn command_lines() -> Vec<(u32, String)> {
    let mut out = vec![];
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(b) = std::fs::read(e.path().join("cmdline")) {
            out.push((pid, String::from_utf8_lossy(&b).replace('\0', " ")));
        }
    }
    out
}

fn http_status(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n").expect("request");
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.lines().next().unwrap_or_default().to_string()
}

#[test]
fn lab_passes_the_token_through_the_environment_not_the_command_line() {
    let port = free_port();
    let token = format!("bdetesttoken{}", unique("x").replace('_', ""));
    let run = std::env::temp_dir().join(unique("bde_test_lab_run"));
    let mut lab = Command::new("setsid")
        .arg("bash")
        .arg(repo().join("kernel/lab.sh"))
        .env("BDE_LAB_PORT", port.to_string())
        .env("BDE_LAB_TOKEN", &token)
        .env("BDE_RUN_DIR", &run)
        // The set-up ran already (kernel/test.sh runs it first); run again from another
        // checkout sharing a venv, it would point the shared kernelspec at this checkout.
        .env("BDE_SETUP", "0")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start kernel/lab.sh");
    let pid = lab.id();
    let stop = |lab: &mut Child| {
        // lab.sh runs in a session of its own (setsid): end that whole group, then reap.
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{pid}")])
            .status();
        let _ = lab.wait();
        let _ = std::fs::remove_dir_all(&run);
    };
    let mut lines = BufReader::new(lab.stdout.take().expect("stdout")).lines();
    let mut url = None;
    for l in lines.by_ref() {
        let Ok(l) = l else { break };
        if let Some(u) = l.split("open the course: ").nth(1) {
            url = Some(u.to_string());
            break;
        }
    }
    let Some(url) = url else {
        stop(&mut lab);
        panic!("kernel/lab.sh ended without printing the course's URL");
    };
    let leaks: Vec<(u32, String)> = command_lines()
        .into_iter()
        .filter(|(_, c)| c.contains(&token))
        .collect();
    let with_token = http_status(port, &format!("/api/status?token={token}"));
    let without = http_status(port, "/api/status");
    let log_mode = std::fs::metadata(run.join(format!("jupyterlab-{port}.log")))
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777);
    stop(&mut lab);
    assert!(url.ends_with(&format!("?token={token}")), "{url}");
    assert!(
        leaks.is_empty(),
        "the token is on a command line: {leaks:?}"
    );
    assert!(with_token.contains(" 200"), "{with_token}");
    assert!(
        without.contains(" 403") || without.contains(" 401"),
        "{without}"
    );
    assert_eq!(log_mode.ok(), Some(0o600), "the log repeats the token");
}
