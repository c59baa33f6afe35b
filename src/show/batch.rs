//! How batch results show in a notebook: a partitioned JDBC read as Spark's `show(n)`, and the
//! Parquet store's files as the course's folder tree. The data comes from [`crate::batch`].

use std::fmt;
use std::path::Path;

use crate::batch::jdbc::Partitioned;
use crate::batch::parquet::files_with_sizes;
use crate::error::Result;
use crate::show::Table;

impl Partitioned {
    /// Spark's `show(n)`: the first `n` rows and the footer `only showing top n rows`.
    pub fn show(&self, n: usize) -> Table {
        match self.frame() {
            Ok(df) => Table::new(&df).rows(n),
            Err(e) => Table::from_rows(&["error"], vec![vec![e.to_string()]]),
        }
    }

    /// Rich output for evcxr: the first 20 rows.
    pub fn evcxr_display(&self) {
        self.show(20).evcxr_display()
    }
}

impl fmt::Display for Partitioned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.show(20))
    }
}

/// The Parquet files under `dir` as a table with their sizes (the course's folder tree).
pub fn files_table(dir: impl AsRef<Path>) -> Result<Table> {
    let dir = dir.as_ref();
    let files = files_with_sizes(dir)?;
    let rows = files
        .iter()
        .map(|(f, size)| vec![f.clone(), size.to_string()])
        .collect();
    Ok(Table::from_rows(&["file", "bytes"], rows)
        .title(format!("{} ({} files)", dir.display(), files.len()))
        .rows(10_000))
}
