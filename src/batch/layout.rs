//! Spark's Hive-style Parquet layout, whatever the table: `<col>=<value>/…/part-<task>-<job
//! id>.c<file>.snappy.parquet` under a data folder, values escaped as Hive escapes them, jobs in
//! progress under `_temporary/` (skipped by readers, as every name starting with `_` or `.`).

use std::path::Path;

use rand::Rng;

use crate::error::{Error, Result};

/// The folder for jobs in progress, inside the data folder.
pub const TEMPORARY: &str = "_temporary";

/// Hive/Spark path escaping of a partition value (`/`, `=`, `%`, control characters, …).
pub fn escape_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        let special = (c as u32) < 0x20
            || matches!(
                c,
                '"' | '#'
                    | '%'
                    | '\''
                    | '*'
                    | '/'
                    | ':'
                    | '='
                    | '?'
                    | '\\'
                    | '\x7f'
                    | '{'
                    | '['
                    | ']'
                    | '^'
            );
        if special {
            out.push_str(&format!("%{:02X}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// A random job id in UUID form (Spark puts one in every part-file name).
pub fn new_job_id() -> String {
    let mut r = rand::rng();
    let b: [u8; 16] = r.random();
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// Spark's part-file name: `part-<task:05>-<job id>.c<file:03>.snappy.parquet`.
pub fn part_file_name(task: usize, job_id: &str, file_no: usize) -> String {
    format!("part-{task:05}-{job_id}.c{file_no:03}.snappy.parquet")
}

/// Every Parquet file under the data folder (jobs in progress left out), as sorted relative
/// paths with `/` separators.
pub fn list_files(data_dir: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    if !data_dir.exists() {
        return Ok(out);
    }
    let mut stack = vec![data_dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).map_err(|e| Error::file(&dir, e))? {
            let e = e.map_err(|e| Error::file(&dir, e))?;
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('_') || name.starts_with('.') {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(rel) = p.strip_prefix(data_dir) {
                out.push(
                    rel.components()
                        .map(|c| c.as_os_str().to_string_lossy().into_owned())
                        .collect::<Vec<_>>()
                        .join("/"),
                );
            }
        }
    }
    out.sort();
    Ok(out)
}
