//! The course's stock data at benchmark scale: the generator's distributions and the stock
//! tree's layout, the chunked parallel upload of `warehouse_stock.item_stock` into it and the
//! aggregation across warehouses, with the course's column names.
//!
//! Notebook 2 builds the same pipeline in its cells from `batch`'s blocks ([`crate::batch::jdbc`],
//! [`crate::batch::parquet`]); this module is what the benchmark runs at millions of rows and
//! what the tests check those cells against.

pub mod aggregate;
pub mod generator;
pub mod store;
pub mod upload;
