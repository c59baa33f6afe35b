//! One engine per checkpoint: an exclusive lock on `<root>/<folder>.lock`, the file beside the
//! checkpoint folder it guards, held for the engine's whole life (start-up replay included) and
//! released by the operating system when the process ends, even by a crash.
//!
//! The lock lives outside the folder, so deleting the folder under a running query does not
//! delete the lock with it: a second engine is still refused while the first one runs, and the
//! first one writes its checkpoint again, whole, from the state it holds (the folder only ever
//! holds what its lock holder wrote). Before every checkpoint write the engine checks that the
//! lock file at the path is still the file it locked ([`CheckpointLock::check`]); when not (the
//! checkpoint root was deleted, or the lock file replaced), another engine may hold a new lock
//! on the same path, so it stops with [`Error::CheckpointRemoved`] instead of writing.
//! Lock files are never deleted (deleting a lock file another process has open lets two
//! processes lock two different files of one name); [`crate::stream::checkpoint::reset`] leaves
//! it, so the way to start afresh stays one call.
//!
//! Two instances of one query would cut different offset ranges under the same batch ids, so
//! sink markers would make one skip records the other never counted. The lock makes a second
//! start, in this kernel, another kernel or another process, fail at once with
//! [`Error::CheckpointLocked`], naming the holder (pid, host, since when) and the fix.
//! [`crate::stream::checkpoint::reset`] takes the same lock, so a reset never deletes the
//! checkpoint under a running query.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The held lock of one checkpoint folder; dropping it releases the lock.
#[derive(Debug)]
pub struct CheckpointLock {
    file: File,
    path: PathBuf,
    /// Device and inode of the locked file, to tell it from a file made again at the same path.
    id: (u64, u64),
    query: String,
    dir: PathBuf,
}

/// The lock file of the checkpoint folder `dir`: `<root>/<folder>.lock`, beside it.
pub fn path_for(dir: &Path) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "checkpoint".into());
    dir.with_file_name(format!("{name}.lock"))
}

fn host() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "this host".into())
}

impl CheckpointLock {
    /// Takes the lock of the checkpoint folder `dir` for `query` (the file beside it, see
    /// [`path_for`]) and makes the folder, or fails at once naming who holds the lock.
    pub fn acquire(dir: &Path, query: &str) -> Result<CheckpointLock> {
        let path = path_for(dir);
        if let Some(root) = path.parent() {
            fs::create_dir_all(root).map_err(|e| Error::file(root, e))?;
        }
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
        let meta = file.metadata().map_err(|e| Error::file(&path, e))?;
        fs::create_dir_all(dir).map_err(|e| Error::file(dir, e))?;
        Ok(CheckpointLock {
            file,
            path,
            id: (meta.dev(), meta.ino()),
            query: query.into(),
            dir: dir.to_path_buf(),
        })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Fails with [`Error::CheckpointRemoved`] when the lock file at its path is no longer the
    /// file this lock holds (the checkpoint root was deleted, or the file replaced): another
    /// engine may lock the new file, so this one must not write the checkpoint again.
    pub fn check(&self) -> Result<()> {
        if fs::metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.id) {
            return Ok(());
        }
        Err(Error::CheckpointRemoved {
            query: self.query.clone(),
            dir: self.dir.clone(),
            lock: self.path.clone(),
        })
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
        let _ = fs::remove_file(path_for(&dir));
    }

    /// The lock is the file beside the folder: removing the folder leaves it held (a second
    /// lock still fails, the holder's check passes); a lock file made again at the same path
    /// (its root deleted) is not the held one, and the holder's check says so.
    #[test]
    fn removing_the_folder_keeps_the_lock_and_a_replaced_lock_file_is_noticed() {
        let root = std::env::temp_dir().join(format!("bde_lock_rm_{}", std::process::id()));
        let dir = root.join("q");
        let first = CheckpointLock::acquire(&dir, "q").expect("first lock");
        assert_eq!(first.path(), root.join("q.lock"));
        assert!(dir.is_dir(), "the folder is made with the lock");
        fs::remove_dir_all(&dir).expect("remove the folder");
        let err = CheckpointLock::acquire(&dir, "q").expect_err("still held");
        assert!(matches!(err, Error::CheckpointLocked { .. }), "{err}");
        first.check().expect("the lock itself is intact");
        fs::remove_file(first.path()).expect("remove the lock file");
        let second = CheckpointLock::acquire(&dir, "q").expect("a new file is a new lock");
        let err = first
            .check()
            .expect_err("the file at the path is another one");
        assert!(matches!(err, Error::CheckpointRemoved { .. }), "{err}");
        assert!(err.to_string().contains("checkpoint::reset"), "{err}");
        drop(second);
        let _ = fs::remove_dir_all(&root);
    }
}
