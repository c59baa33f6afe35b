//! One engine per checkpoint: an exclusive lock on `<checkpoint dir>/lock`, held for the
//! engine's whole life (start-up replay included) and released by the operating system when the
//! process ends, even by a crash.
//!
//! Two instances of one query would cut different offset ranges under the same batch ids, so
//! sink markers would make one skip records the other never counted. The lock makes a second
//! start, in this kernel, another kernel or another process, fail at once with
//! [`Error::CheckpointLocked`], naming the holder (pid, host, since when) and the fix.
//! [`crate::stream::checkpoint::reset`] takes the same lock, so a reset never deletes the
//! checkpoint under a running query.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The held lock of one checkpoint folder; dropping it releases the lock.
#[derive(Debug)]
pub struct CheckpointLock {
    file: File,
    path: PathBuf,
}

fn host() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "this host".into())
}

impl CheckpointLock {
    /// Takes the lock of `dir` for `query`, or fails at once naming who holds it.
    pub fn acquire(dir: &Path, query: &str) -> Result<CheckpointLock> {
        fs::create_dir_all(dir).map_err(|e| Error::file(dir, e))?;
        let path = dir.join("lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::file(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim().to_string();
                let pid = holder
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("pid="))
                    .unwrap_or("?")
                    .to_string();
                let holder = if holder.is_empty() {
                    "another process (no details written yet)".to_string()
                } else {
                    holder
                };
                return Err(Error::CheckpointLocked {
                    query: query.into(),
                    dir: dir.to_path_buf(),
                    holder,
                    pid,
                });
            }
            Err(TryLockError::Error(e)) => return Err(Error::file(&path, e)),
        }
        let since = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC");
        let line = format!(
            "pid={} host={} since={since} query={query}\n",
            std::process::id(),
            host()
        );
        let written = file
            .set_len(0)
            .and_then(|_| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(line.as_bytes()));
        written.map_err(|e| Error::file(&path, e))?;
        Ok(CheckpointLock { file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for CheckpointLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_fails_naming_the_holder_and_the_first_release_frees_it() {
        let dir = std::env::temp_dir().join(format!("bde_lock_test_{}", std::process::id()));
        let first = CheckpointLock::acquire(&dir, "q").expect("first lock");
        let err = CheckpointLock::acquire(&dir, "q").expect_err("second lock must fail");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("pid={}", std::process::id())),
            "{msg}"
        );
        assert!(msg.contains("since="), "{msg}");
        assert!(msg.contains("stop"), "{msg}");
        drop(first);
        CheckpointLock::acquire(&dir, "q").expect("free again after the first is dropped");
        let _ = fs::remove_dir_all(&dir);
    }
}
