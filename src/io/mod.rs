//! Connections to the three servers, and nothing else: the only place that knows wire details.
//!
//! - [`kafka`]: admin (create/list/delete topics), producer, consumers, end offsets;
//! - [`redis`]: connections and the sorted-set reads and writes the course uses;
//! - [`mariadb`]: connection pools, statements and the driver's errors;
//! - [`health`]: one look at all three, with addresses and latency.

pub mod health;
pub mod kafka;
pub mod mariadb;
pub mod redis;

use std::time::Duration;

/// How long a connection attempt may take before the service counts as down.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
