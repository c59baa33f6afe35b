//! The dashboards of this process, as files: `<private dir>/<pid>/<title hash>` holds
//! `<port> <token>`, where the private dir is `$XDG_RUNTIME_DIR/bde_kit/dashboards` (a per-user
//! tmpfs on systemd machines) or `~/.cache/bde_kit/dashboards`, made 0700 and owned by this
//! user (checked: never a symlink, never another user's folder); the files are 0600, so no other
//! local user can read a token or plant a file.
//!
//! evcxr compiles every cell into its own library, each with its own copy of the kit's statics,
//! so an in-memory registry would see only the dashboards of the cell that started them. The
//! files are shared by every cell of the kernel: a new dashboard with the title of a running one
//! asks the old server to stop (`GET /stop?token=…` on loopback), and [`stop_all`] does so for
//! every file of the process. The token stays in the process's own temp files.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The per-user root of the registries: the user's runtime dir when it is set and usable,
/// otherwise the user's cache dir.
fn private_root() -> Option<PathBuf> {
    let runtime = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|d| d.is_absolute() && d.is_dir());
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|d| d.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")));
    let base = runtime.or(cache)?;
    Some(base.join("bde_kit").join("dashboards"))
}

#[cfg(unix)]
fn private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    extern "C" {
        fn geteuid() -> u32;
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)?;
    let meta = std::fs::symlink_metadata(path)?;
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { geteuid() };
    if !meta.is_dir() || meta.uid() != me {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("{} is not a folder of this user", path.display()),
        ));
    }
    if meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn private_dir(path: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(path)
}

/// This process's registry folder (private, see the module doc), made on first use.
fn dir() -> Option<PathBuf> {
    let root = private_root()?;
    private_dir(&root).ok()?;
    let d = root.join(std::process::id().to_string());
    private_dir(&d).ok()?;
    Some(d)
}

/// Writes `text` to `path` readable by this user only (an old file is replaced, never followed).
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let _ = std::fs::remove_file(path);
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path)?.write_all(text.as_bytes())
}

fn file_of(title: &str) -> Option<PathBuf> {
    // FNV-1a: a stable file name for any title.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in title.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    Some(dir()?.join(format!("{h:016x}")))
}

/// Records a running dashboard (best effort: without the file it cannot be replaced by title).
pub(super) fn record(title: &str, port: u16, token: &str) {
    if let Some(f) = file_of(title) {
        let _ = write_private(&f, &format!("{port} {token}\n"));
    }
}

/// Forgets the dashboard of `title` if the file is still this one's (`token`).
pub(super) fn forget(title: &str, token: &str) {
    let Some(f) = file_of(title) else { return };
    if std::fs::read_to_string(&f).is_ok_and(|s| s.split_whitespace().nth(1) == Some(token)) {
        let _ = std::fs::remove_file(f);
    }
}

/// Stops the running dashboard titled `title`, if any, and waits (at most 2 s) for its port to close.
pub(super) fn stop(title: &str) {
    let Some(f) = file_of(title) else { return };
    if let Ok(s) = std::fs::read_to_string(&f) {
        stop_server(&s);
        let _ = std::fs::remove_file(f);
    }
}

/// The folder of this process's records.
#[cfg(test)]
pub(super) fn folder() -> Option<PathBuf> {
    dir()
}

/// Stops every dashboard of this process.
pub(super) fn stop_all() {
    let Some(d) = dir() else { return };
    if let Ok(entries) = std::fs::read_dir(d) {
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
