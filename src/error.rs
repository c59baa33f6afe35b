//! One error type for the whole kit, and its [`Result`] alias.
//!
//! Every message says what failed, where (the service and the address tried) and what to do
//! next, because the reader is someone stepping through a notebook, not reading a backtrace.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The three servers the course talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    Kafka,
    Redis,
    MariaDb,
}

impl Service {
    /// The environment variable that points the kit at another server.
    pub fn env_var(self) -> &'static str {
        match self {
            Service::Kafka => "BDE_KAFKA",
            Service::Redis => "BDE_REDIS",
            Service::MariaDb => "BDE_MARIADB",
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Service::Kafka => "Kafka",
            Service::Redis => "Redis",
            Service::MariaDb => "MariaDB",
        })
    }
}

/// What to tell the user when a service does not answer.
pub const START_SERVICES_HINT: &str =
    "start the services with `kernel/services.sh up` (or `docker compose up -d`)";

/// Everything that can go wrong in the kit.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The service did not answer at all.
    #[error("{service} is not reachable at {address}: {detail}. Fix: {hint}, or point {env} at a running server.", hint = START_SERVICES_HINT, env = service.env_var())]
    ServiceDown {
        service: Service,
        address: String,
        detail: String,
    },

    /// The service answered but refused or failed the request.
    #[error("{service} at {address} failed to {action}: {detail}")]
    Service {
        service: Service,
        address: String,
        action: String,
        detail: String,
    },

    /// A Polars computation failed.
    #[error("Polars: {0}")]
    Polars(#[from] polars::error::PolarsError),

    /// A local file or folder could not be read or written.
    #[error("file {}: {source}. Check that the folder exists and is writable (BDE_DATA_DIR / BDE_CHECKPOINT_DIR move it).", path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },

    /// The caller passed something the kit cannot use.
    #[error("invalid input: {0}")]
    Invalid(String),

    /// A bounded wait ran out; the work goes on in the background unless said otherwise.
    #[error("timed out after {after:?} waiting for {what}; {hint}")]
    Timeout {
        what: String,
        after: Duration,
        hint: String,
    },

    /// A streaming query with this name is running already.
    #[error("a query named '{0}' is already running: stop it first (`stream::stop(\"{0}\")` or `stop_all()`), or start the new one with `.replace_running(true)`")]
    QueryRunning(String),

    /// Another engine (this kernel, another kernel or another process) holds the query's checkpoint.
    #[error("query '{query}' is running elsewhere: its checkpoint {} is held by {holder}. Stop that query first (`q.stop()` in the kernel that started it, or end process {pid}); two instances of one query would cut different batches under the same ids", dir.display())]
    CheckpointLocked {
        query: String,
        dir: PathBuf,
        holder: String,
        pid: String,
    },

    /// The lock file of a running query's checkpoint was removed or replaced (its root deleted)
    /// while the query ran: another engine may lock the new file, so the query stops.
    #[error("the lock {} of query '{query}' was removed or replaced while the query ran (was its checkpoint root deleted?), so the query stops instead of writing its checkpoint {} again: another instance may have started on it. To start a query afresh, stop it and call `stream::checkpoint::reset(root, \"{query}\")` (it refuses while the query runs anywhere); never delete checkpoint folders or lock files under a running query", lock.display(), dir.display())]
    CheckpointRemoved {
        query: String,
        dir: PathBuf,
        lock: PathBuf,
    },

    /// Jupyter's stop button (■) ended a kit call that has no partial result to return; the work
    /// in the background goes on (see [`crate::interrupt`]).
    #[error("interrupted (■): {0}")]
    Interrupted(String),

    /// A background task ended abnormally (it panicked or was dropped).
    #[error("background task failed: {0}")]
    Task(String),
}

/// The kit's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps a failed request to a service.
    pub fn service(
        service: Service,
        address: impl Into<String>,
        action: impl Into<String>,
        detail: impl fmt::Display,
    ) -> Error {
        Error::Service {
            service,
            address: address.into(),
            action: action.into(),
            detail: detail.to_string(),
        }
    }

    /// A service that did not answer.
    pub fn down(service: Service, address: impl Into<String>, detail: impl fmt::Display) -> Error {
        Error::ServiceDown {
            service,
            address: address.into(),
            detail: detail.to_string(),
        }
    }

    /// A file error with its path.
    pub fn file(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::File {
            path: path.into(),
            source,
        }
    }

    /// Bad input from the caller.
    pub fn invalid(msg: impl Into<String>) -> Error {
        Error::Invalid(msg.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down_message_names_service_address_and_fix() {
        let e = Error::down(Service::Kafka, "127.0.0.1:9092", "connection refused");
        let m = e.to_string();
        assert!(m.contains("Kafka"), "{m}");
        assert!(m.contains("127.0.0.1:9092"), "{m}");
        assert!(m.contains("kernel/services.sh up"), "{m}");
        assert!(m.contains("BDE_KAFKA"), "{m}");
    }
}
