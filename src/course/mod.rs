//! The course's seven notebooks as functions with the course's names, defaults and output.
pub mod analytics;
pub mod setup;
pub mod stock;
pub mod visits;
pub mod monitor;
pub mod long_actions;
pub mod scorecard;
