//! Where the services are: the course's defaults, each overridable by an environment variable.
//!
//! | setting | default | variable |
//! |---|---|---|
//! | Kafka bootstrap servers | `127.0.0.1:9092` | `BDE_KAFKA` |
//! | Redis URL | `redis://127.0.0.1:6379` | `BDE_REDIS` |
//! | MariaDB URL (course user) | `mysql://spark:spark@127.0.0.1:3306` | `BDE_MARIADB` |
//! | MariaDB admin URL (setup notebook only) | the course user (see below) | `BDE_MARIADB_ROOT` |
//! | data folder (the course's `raw_data/`) | `raw_data` beside the notebook | `BDE_DATA_DIR` |
//! | checkpoint folder | `$XDG_STATE_HOME/bde_kit/checkpoints` (`~/.local/state/bde_kit/checkpoints`) | `BDE_CHECKPOINT_DIR` |
//!
//! The checkpoint folder is always absolute ([`default_checkpoint_dir`]; a relative
//! `BDE_CHECKPOINT_DIR` is taken from the working directory of the first read and made absolute),
//! so every kernel and process of a user finds a query's one checkpoint wherever it was started:
//! a root that followed the working directory gave one query two checkpoints, and two instances
//! of it, when two notebooks in two folders started it.
//!
//! Settings are read from the environment each time [`Settings::from_env`] is called, so a cell
//! can `std::env::set_var("BDE_KAFKA", "…")` and the next call uses it.
//!
//! The setup notebook creates the course's databases as the course user by default:
//! `kernel/setup.sh` creates `spark` through the server's socket login and gives it the course's
//! databases with GRANT OPTION, so no passwordless administrator is ever needed. Elsewhere, point
//! `BDE_MARIADB_ROOT` at an administrator with a password.
//!
//! `Debug` of [`Settings`] hides the passwords in the URLs ([`redact`]).

use std::path::PathBuf;

/// Addresses of the three services and the local folders the kit writes to.
#[derive(Clone, PartialEq, Eq)]
pub struct Settings {
    /// Kafka bootstrap servers, `host:port[,host:port]`.
    pub kafka: String,
    /// Redis URL, `redis://host:port[/db]`.
    pub redis: String,
    /// MariaDB URL for the course user, `mysql://user:password@host:port`.
    pub mariadb: String,
    /// MariaDB URL for the administrator, used only by the setup notebook.
    pub mariadb_root: String,
    /// The course's `raw_data/` folder (stands in for HDFS/S3).
    pub data_dir: PathBuf,
    /// Where streaming queries keep their checkpoints (absolute, see [`default_checkpoint_dir`]).
    pub checkpoint_dir: PathBuf,
}

/// Course default for Kafka.
pub const DEFAULT_KAFKA: &str = "127.0.0.1:9092";
/// Course default for Redis.
pub const DEFAULT_REDIS: &str = "redis://127.0.0.1:6379";
/// Course default for MariaDB (user `spark`, password `spark`).
pub const DEFAULT_MARIADB: &str = "mysql://spark:spark@127.0.0.1:3306";
/// Login of the setup notebook: the course user, which `kernel/setup.sh` gives the course's
/// databases with GRANT OPTION (set `BDE_MARIADB_ROOT` to use an administrator instead).
pub const DEFAULT_MARIADB_ROOT: &str = DEFAULT_MARIADB;

/// The checkpoint root when `BDE_CHECKPOINT_DIR` is not set: `bde_kit/checkpoints` under the
/// user's state folder (`$XDG_STATE_HOME`, else `$HOME/.local/state`), an absolute path that does
/// not depend on the working directory. Without a home (`HOME` unset) it is
/// `tmp/checkpoints` under the working directory, made absolute.
pub fn default_checkpoint_dir() -> PathBuf {
    let abs = |v: Option<std::ffi::OsString>| v.map(PathBuf::from).filter(|p| p.is_absolute());
    if let Some(state) = abs(std::env::var_os("XDG_STATE_HOME")) {
        return state.join("bde_kit").join("checkpoints");
    }
    if let Some(home) = abs(std::env::var_os("HOME")) {
        return home.join(".local/state/bde_kit/checkpoints");
    }
    absolute(PathBuf::from("tmp/checkpoints"))
}

/// `p` made absolute against the working directory (unchanged when it is absolute already or
/// the working directory cannot be read).
pub fn absolute(p: PathBuf) -> PathBuf {
    std::path::absolute(&p).unwrap_or(p)
}

/// A URL with its password replaced by `***` (`mysql://spark:***@127.0.0.1:3306`).
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("kafka", &self.kafka)
            .field("redis", &redact(&self.redis))
            .field("mariadb", &redact(&self.mariadb))
            .field("mariadb_root", &redact(&self.mariadb_root))
            .field("data_dir", &self.data_dir)
            .field("checkpoint_dir", &self.checkpoint_dir)
            .finish()
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            kafka: DEFAULT_KAFKA.into(),
            redis: DEFAULT_REDIS.into(),
            mariadb: DEFAULT_MARIADB.into(),
            mariadb_root: DEFAULT_MARIADB_ROOT.into(),
            data_dir: PathBuf::from("raw_data"),
            checkpoint_dir: default_checkpoint_dir(),
        }
    }
}

impl Settings {
    /// The course defaults with every `BDE_*` variable that is set (and not empty) applied.
    pub fn from_env() -> Settings {
        let d = Settings::default();
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Settings {
            kafka: var("BDE_KAFKA").unwrap_or(d.kafka),
            redis: var("BDE_REDIS").unwrap_or(d.redis),
            mariadb: var("BDE_MARIADB").unwrap_or(d.mariadb),
            mariadb_root: var("BDE_MARIADB_ROOT").unwrap_or(d.mariadb_root),
            data_dir: var("BDE_DATA_DIR").map(PathBuf::from).unwrap_or(d.data_dir),
            checkpoint_dir: var("BDE_CHECKPOINT_DIR")
                .map(|v| absolute(PathBuf::from(v)))
                .unwrap_or(d.checkpoint_dir),
        }
    }

    /// `host:port` of a URL such as `mysql://spark:spark@127.0.0.1:3306/db`, without credentials.
    pub fn address_of(url: &str) -> String {
        let rest = url.split("://").nth(1).unwrap_or(url);
        let rest = rest.rsplit('@').next().unwrap_or(rest);
        rest.split('/').next().unwrap_or(rest).to_string()
    }
}

/// True when `BDE_FAST` is set (and not `0`): generators and refresh loops shrink their pauses
/// (replays and tests).
pub fn fast_mode() -> bool {
    std::env::var("BDE_FAST").is_ok_and(|v| !v.is_empty() && v != "0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_hides_credentials_and_database() {
        assert_eq!(
            Settings::address_of("mysql://spark:spark@127.0.0.1:3306/db"),
            "127.0.0.1:3306"
        );
        assert_eq!(
            Settings::address_of("redis://127.0.0.1:6379"),
            "127.0.0.1:6379"
        );
        assert_eq!(Settings::address_of("127.0.0.1:9092"), "127.0.0.1:9092");
    }

    #[test]
    fn debug_output_never_shows_a_password() {
        let s = Settings {
            redis: "redis://:r3dis-secret@127.0.0.1:6379".into(),
            mariadb: "mysql://spark:db-secret@127.0.0.1:3306".into(),
            mariadb_root: "mysql://admin:root-secret@127.0.0.1:3306/x".into(),
            ..Settings::default()
        };
        let shown = format!(
            "{s:?} {:?}",
            crate::stream::BatchInfo {
                query: "q".into(),
                batch_id: 1,
                batch_time_ms: 0,
                replay: false,
                flush: false,
                settings: s.clone()
            }
        );
        for secret in ["r3dis-secret", "db-secret", "root-secret"] {
            assert!(!shown.contains(secret), "{secret} shown in {shown}");
        }
        assert!(
            shown.contains("mysql://spark:***@127.0.0.1:3306"),
            "{shown}"
        );
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }

    #[test]
    fn defaults_are_the_course_addresses() {
        let s = Settings::default();
        assert_eq!(s.kafka, "127.0.0.1:9092");
        assert!(s.mariadb.contains("spark:spark@127.0.0.1:3306"));
    }

    /// The checkpoint root never depends on the working directory: the default is absolute.
    #[test]
    fn the_checkpoint_root_is_absolute() {
        assert!(
            default_checkpoint_dir().is_absolute(),
            "{}",
            default_checkpoint_dir().display()
        );
        assert!(Settings::default().checkpoint_dir.is_absolute());
        assert!(absolute(PathBuf::from("x/cp")).is_absolute());
        assert_eq!(absolute(PathBuf::from("/a/b")), PathBuf::from("/a/b"));
    }
}
