//! What notebook cells need, in one `use bde_kit::prelude::*;`: the vocabulary the cells write.
//!
//! - batch: [`JdbcRead`] (partitioned read) and [`bounds`], [`JdbcWrite`] (a frame into a table), [`SaveMode`] and [`scan_hive`]
//!   (Hive-partitioned Parquet), [`KafkaPublish`] (rows to Kafka, each ID once), [`TableRef`];
//! - stream: [`Stream`] (read, filter, map, watermark, [`Window`] with the aggregates of [`agg`]
//!   giving [`WindowRow`]s), [`KafkaSource`] and [`Start`], [`MemorySource`], [`Query`],
//!   [`Trigger`], the sinks ([`KafkaSink`], [`RedisZIncr`], [`MariaDbInsert`] with [`Merge`],
//!   [`MemorySink`]), [`Row`] and [`decode_json`] for a record type written in a cell;
//! - explore: [`Explorer`] (one-line views of Kafka, Redis and MariaDB state) and its [`Explored`];
//! - the course's names ([`crate::course::names`]);
//! - Polars' prelude (DataFrame, `col`, `lit`, `len`, `IntoLazy`, …) with the `df!` macro, so cells
//!   never need their own `:dep polars` (which would recompile it); the lazy expression chain is
//!   the kit's SQL: Polars' SQL context is not compiled in (its `sql` feature pulls in time
//!   zones, regex and more Polars features, recompiling Polars in every kernel);
//! - [`BdeError`], the one error type of every kit call (`Result<_, BdeError>` in a cell's `fn`);
//! - `serde`, `chrono`'s date types, `Duration`, and what shows results ([`Table`], [`Chart`],
//!   [`Report`], [`Live`]);
//! - [`PlainDisplay`]: a cell ending in a plain value (a number, a `String`, a tuple, …) shows it
//!   as evcxr does, but compiles once instead of twice; [`FrameDisplay`]: a cell ending in a
//!   `DataFrame` or a `LazyFrame` shows an HTML table with the shape, the column types and the
//!   first and last rows, as Python Polars does in Jupyter ([`crate::show::frame`]);
//! - [`pyspark_help`]: the course's PySpark calls beside the kit's, as a table.

pub use polars::df;
pub use polars::prelude::*;

pub use crate::batch::jdbc::{bounds, JdbcRead, Partitioned};
pub use crate::batch::jdbc_write::JdbcWrite;
pub use crate::batch::parquet::{scan_hive, SaveMode};
pub use crate::batch::publish::{KafkaPublish, Published};
pub use crate::batch::TableRef;
pub use crate::config::Settings;
pub use crate::course::help::pyspark_help;
pub use crate::course::names::*;
pub use crate::error::Error as BdeError;
pub use crate::explore::{Explored, Explorer};
pub use crate::io::health::{health, Health};
pub use crate::runtime::{block_on, block_on_timeout};
pub use crate::show::batch::files_table;
pub use crate::show::live::Live;
pub use crate::show::{query_dashboard, Chart, Report, Table};
pub use crate::stream::dataflow::agg;
pub use crate::stream::sink::{KafkaSink, MariaDbInsert, MemorySink, Merge, RedisZIncr};
pub use crate::stream::{
    decode_json, KafkaSource, MemorySource, Mode, Query, Row, Start, Stream, StreamingQuery,
    Trigger, Window, WindowRow,
};
pub use crate::{batch, course, explore, io, stream};
pub use chrono::{NaiveDate, NaiveDateTime};
pub use serde;
pub use std::time::Duration;

/// Shows a plain value the way evcxr's own fallback does: `{:?}` as `text/plain`.
///
/// evcxr compiles a cell that ends in an expression first with `(value).evcxr_display()` and,
/// when the value's type has no such method, once more with `{:?}`: every cell ending in a
/// number, a `String` or a `DataFrame` paid two compilations (measured: `1 + 1` ran cargo and
/// rustc twice, 1.7 s). With this trait in scope the first compilation already succeeds and
/// prints the same text. It is implemented for listed types only, never for every `Debug` type:
/// a blanket impl would also match `Box<Table>` or `Rc<Chart>` before auto-deref reaches their
/// inner type's rich `evcxr_display`. The kit's own types keep their inherent `evcxr_display`
/// (inherent methods win over trait methods). Not covered: evcxr's `:fmt` and `:types`
/// settings, which the second compilation would have applied.
pub trait PlainDisplay {
    /// Prints `{:?}` of the value as evcxr's `text/plain` block.
    fn evcxr_display(&self);
}

fn send_text_plain(text: &str) {
    use std::io::Write;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let sent = out
        .write_all(b"EVCXR_BEGIN_CONTENT text/plain\n")
        .and_then(|_| out.write_all(text.as_bytes()))
        .and_then(|_| out.write_all(b"\nEVCXR_END_CONTENT\n"));
    if let Err(e) = sent {
        eprintln!("Failed to send content to parent: {e:?}");
    }
}

macro_rules! plain_display {
    ($($t:ty),* $(,)?) => {$(
        impl PlainDisplay for $t {
            fn evcxr_display(&self) {
                send_text_plain(&format!("{self:?}"));
            }
        }
    )*};
}

plain_display!(
    bool, char, i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize, f32, f64
);
plain_display!((), String, str, Duration, NaiveDate, NaiveDateTime);
plain_display!(Series, Column, DataType, Schema);

macro_rules! plain_display_generic {
    ($(<$($g:ident),+> $t:ty),* $(,)?) => {$(
        impl<$($g: std::fmt::Debug),+> PlainDisplay for $t {
            fn evcxr_display(&self) {
                send_text_plain(&format!("{self:?}"));
            }
        }
    )*};
}

plain_display_generic!(
    <T> Vec<T>,
    <T> [T],
    <T> Option<T>,
    <T, E> Result<T, E>,
    <A, B> (A, B),
    <A, B, C> (A, B, C),
    <A, B, C, D> (A, B, C, D),
    <K, V> std::collections::HashMap<K, V>,
    <K, V> std::collections::BTreeMap<K, V>,
);

impl<T: std::fmt::Debug, const N: usize> PlainDisplay for [T; N] {
    fn evcxr_display(&self) {
        send_text_plain(&format!("{self:?}"));
    }
}

/// Shows a frame as a cell's value the way Python Polars does in Jupyter: an HTML table with
/// the shape, each column's name and type, and the first and last rows of a long frame. A
/// `LazyFrame` is collected with a bound (its first rows only). See [`crate::show::frame`].
pub trait FrameDisplay {
    /// Prints the frame's HTML table as evcxr's `text/html` block.
    fn evcxr_display(&self);
}

impl FrameDisplay for DataFrame {
    fn evcxr_display(&self) {
        crate::show::frame::display_frame(self);
    }
}

impl FrameDisplay for LazyFrame {
    fn evcxr_display(&self) {
        crate::show::frame::display_lazy(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // What evcxr generates for a cell's final expression: `(value).evcxr_display();`. These must
    // resolve: plain values through PlainDisplay, the kit's types through their own inherent
    // method (trait methods never shadow inherent ones), references and literals included.
    #[test]
    #[allow(clippy::needless_borrow)] // the borrowed forms are what cells write
    fn final_expressions_resolve_evcxr_display() -> Result<(), BdeError> {
        (1 + 1).evcxr_display();
        (2.5).evcxr_display();
        ("text").evcxr_display();
        (String::from("text")).evcxr_display();
        (vec![1, 2], Some("x")).evcxr_display();
        let df = df!("A" => [1i64, 2])?;
        #[allow(clippy::needless_borrow)] // a cell's final `&df` must resolve too
        (&df).evcxr_display();
        df.evcxr_display();
        (df.height()).evcxr_display();
        (Table::new(&df)).evcxr_display();
        (df.clone().lazy()).evcxr_display();
        (&df.clone().lazy()).evcxr_display();
        Ok(())
    }
}
