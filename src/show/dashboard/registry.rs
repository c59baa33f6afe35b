//! The dashboards of this process, as files: `<temp>/bde_dashboards/<pid>/<title hash>` holds
//! `<port> <token>`.
//!
//! evcxr compiles every cell into its own library, each with its own copy of the kit's statics,
//! so an in-memory registry would see only the dashboards of the cell that started them. The
//! files are shared by every cell of the kernel: a new dashboard with the title of a running one
//! asks the old server to stop (`GET /stop?token=…` on loopback), and [`stop_all`] does so for
//! every file of the process. The token stays in the process's own temp files.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

fn dir() -> PathBuf {
    std::env::temp_dir()
        .join("bde_dashboards")
        .join(std::process::id().to_string())
}

fn file_of(title: &str) -> PathBuf {
    // FNV-1a: a stable file name for any title.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in title.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    dir().join(format!("{h:016x}"))
}

/// Records a running dashboard (best effort: without the file it cannot be replaced by title).
pub(super) fn record(title: &str, port: u16, token: &str) {
    let _ = std::fs::create_dir_all(dir());
    let _ = std::fs::write(file_of(title), format!("{port} {token}\n"));
}

/// Forgets the dashboard of `title` if the file is still this one's (`token`).
pub(super) fn forget(title: &str, token: &str) {
    let f = file_of(title);
    if std::fs::read_to_string(&f).is_ok_and(|s| s.split_whitespace().nth(1) == Some(token)) {
        let _ = std::fs::remove_file(f);
    }
}

/// Stops the running dashboard titled `title`, if any, and waits (at most 2 s) for its port to close.
pub(super) fn stop(title: &str) {
    let f = file_of(title);
    if let Ok(s) = std::fs::read_to_string(&f) {
        stop_server(&s);
        let _ = std::fs::remove_file(f);
    }
}

/// Stops every dashboard of this process.
pub(super) fn stop_all() {
    if let Ok(entries) = std::fs::read_dir(dir()) {
        for e in entries.flatten() {
            if let Ok(s) = std::fs::read_to_string(e.path()) {
                stop_server(&s);
            }
            let _ = std::fs::remove_file(e.path());
        }
    }
}

fn stop_server(record: &str) {
    let mut parts = record.split_whitespace();
    let (Some(Ok(port)), Some(token)) = (parts.next().map(str::parse::<u16>), parts.next()) else {
        return;
    };
    let ask = || -> std::io::Result<()> {
        let mut s = std::net::TcpStream::connect_timeout(
            &([127, 0, 0, 1], port).into(),
            Duration::from_secs(1),
        )?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        write!(
            s,
            "GET /stop?token={token} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"
        )?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(())
    };
    if ask().is_ok() {
        // The server checks its stop flag at least every 200 ms; wait for the port to close.
        for _ in 0..40 {
            if std::net::TcpStream::connect_timeout(
                &([127, 0, 0, 1], port).into(),
                Duration::from_millis(200),
            )
            .is_err()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
