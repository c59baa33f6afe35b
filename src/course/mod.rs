//! The course: its names ([`names`], each defined once), the generators' distributions, the
//! checks against the generators, and what the notebooks print around the cells. The pipelines
//! themselves are written in the notebook cells with the kit's building blocks.
//!
//! [`names`] holds every topic, key, database and table name; [`visit`] is the visit record the
//! generator, the tests and the benchmarks share (notebook 4 declares its own in a cell).
//!
//! | notebook | module |
//! |---|---|
//! | `code_00_03_Spark_BDE_Setup_Prerequisites` | [`setup`] |
//! | `code_03_XX_Spark_BDE_Batch_Data_Engg` | [`stock`] |
//! | `code_04_03_Spark_BDE_Generate a visits stream` | [`visits`] |
//! | `code_04_04_Spark_BDE_Build_a_streaming_analytics_job` | [`analytics`] |
//! | `code_04_05_Spark_BDE_Execute_the_pipeline` | [`monitor`] |
//! | `code_06_03_Spark_BDE_Extracting_long_last_actions` | [`long_actions`] |
//! | `code_06_04_Spark_BDE_scorecard_for_last_action` | [`scorecard`] |
//!
//! [`help`] is the course's PySpark calls beside the kit's (`pyspark_help()` in a cell).

pub mod analytics;
pub mod help;
pub mod long_actions;
pub mod monitor;
pub mod names;
pub mod scorecard;
pub mod setup;
pub mod stock;
pub mod stock_data;
pub mod visit;
pub mod visits;
