//! # bde_kit
//!
//! The Rust kit behind the notebooks of "Apache Spark Essential Training: Big Data Engineering".
//! A notebook loads it with one cell:
//!
//! ```text
//! :dep bde_kit = { path = ".." }
//! use bde_kit::prelude::*;
//! ```
//!
//! Layers (data flows one way):
//! - [`io`] knows the servers (Kafka, Redis, MariaDB) and nothing else;
//! - [`batch`] and [`stream`] know data engineering (Polars batch jobs, micro-batch streaming);
//! - [`course`] knows the course (one module per notebook);
//! - [`explore`] gives one-line views of what Kafka, Redis and MariaDB hold;
//! - [`show`] knows the notebook (HTML/text tables, SVG charts, live progress).
//!
//! Below all of them, [`untrusted`] makes outside text safe to print or render (every layer uses
//! it wherever a value from a server reaches stdout, HTML or SVG).
//!
//! Every dependency a cell needs comes through the kit ([`polars`], [`tokio`], [`serde_json`],
//! [`chrono`]), so a notebook never needs a second `:dep` (which would recompile Polars).

pub mod batch;
pub mod config;
pub mod course;
pub mod error;
pub mod explore;
pub mod interrupt;
pub mod io;
pub mod prelude;
pub mod runtime;
pub mod show;
pub mod stream;
pub mod untrusted;

pub use config::Settings;
pub use error::{Error, Result};
pub use io::health::{health, Health};
pub use runtime::{block_on, block_on_timeout};
pub use show::{Chart, Report, Table};

pub use chrono;
pub use mysql;
pub use polars;
pub use rand;
pub use rdkafka;
pub use redis;
pub use serde;
pub use serde_json;
pub use tokio;
