//! What notebook cells need, in one `use bde_kit::prelude::*;`.
//!
//! Polars' prelude comes along (DataFrame, `col`, `lit`, `IntoLazy`, …) together with the
//! `df!` macro, so cells never need their own `:dep polars` (which would recompile it).

pub use polars::df;
pub use polars::prelude::*;

pub use crate::config::Settings;
pub use crate::{batch, course, io, stream};
pub use crate::error::Error as BdeError;
pub use crate::io::health::{health, Health};
pub use crate::runtime::{block_on, block_on_timeout};
pub use crate::show::live::Live;
pub use crate::show::{Chart, Report, Table};
pub use std::time::Duration;
