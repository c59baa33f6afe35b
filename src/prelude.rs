//! What notebook cells need, in one `use bde_kit::prelude::*;`: the vocabulary the cells write.
//!
//! - batch: [`JdbcRead`] (partitioned read) and [`bounds`], [`JdbcWrite`] (a frame into a table), [`SaveMode`] and [`scan_hive`]
//!   (Hive-partitioned Parquet), [`KafkaPublish`] (rows to Kafka, each ID once), [`TableRef`];
//! - stream: [`Query`], [`KafkaSource`] and [`Start`], [`Trigger`], the sinks ([`KafkaSink`],
//!   [`RedisZIncr`], [`MariaDbInsert`] with [`Merge`]), [`Windowed`] with [`WindowRow`], [`Row`]
//!   and [`decode_json`] for a record type written in a cell;
//! - the course's names ([`crate::course::names`]);
//! - Polars' prelude (DataFrame, `col`, `lit`, `len`, `IntoLazy`, …) with the `df!` macro, so cells
//!   never need their own `:dep polars` (which would recompile it); the lazy expression chain is
//!   the kit's SQL: Polars' SQL context is not compiled in (its `sql` feature pulls in time
//!   zones, regex and more Polars features, recompiling Polars in every kernel);
//! - [`BdeError`], the one error type of every kit call (`Result<_, BdeError>` in a cell's `fn`);
//! - `serde`, `chrono`'s date types, `Duration`, and what shows results ([`Table`], [`Chart`],
//!   [`Report`], [`Live`]).

pub use polars::df;
pub use polars::prelude::*;

pub use crate::batch::jdbc::{bounds, JdbcRead, Partitioned};
pub use crate::batch::jdbc_write::JdbcWrite;
pub use crate::batch::parquet::{files_table, scan_hive, SaveMode};
pub use crate::batch::publish::{KafkaPublish, Published};
pub use crate::batch::TableRef;
pub use crate::config::Settings;
pub use crate::course::names::*;
pub use crate::error::Error as BdeError;
pub use crate::io::health::{health, Health};
pub use crate::runtime::{block_on, block_on_timeout};
pub use crate::show::live::Live;
pub use crate::show::{Chart, Report, Table};
pub use crate::stream::sink::{KafkaSink, MariaDbInsert, Merge, RedisZIncr, Windowed};
pub use crate::stream::{decode_json, KafkaSource, Query, Row, Start, StreamingQuery, Trigger, WindowRow};
pub use crate::{batch, course, io, stream};
pub use chrono::{NaiveDate, NaiveDateTime};
pub use serde;
pub use std::time::Duration;
