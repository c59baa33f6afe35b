//! One look at the three services: up or down, the address tried, latency, version or the fix.
//!
//! The three checks run at once, each bounded by a few seconds, so a cell calling [`health`]
//! returns in a few seconds even when every service is down.

use std::fmt;
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;
use rdkafka::consumer::Consumer;

use crate::config::Settings;
use crate::error::{Error, Service, START_SERVICES_HINT};
use crate::io::{kafka, mariadb, redis};
use crate::runtime;

/// The state of one service.
#[derive(Debug, Clone)]
pub struct ServiceHealth {
    pub service: Service,
    pub address: String,
    pub up: bool,
    pub latency: Duration,
    /// The server's version when up; the error and the fix when down.
    pub detail: String,
}

/// The state of all three services, in the order Kafka, Redis, MariaDB.
#[derive(Debug, Clone)]
pub struct Health {
    pub services: Vec<ServiceHealth>,
}

impl Health {
    /// True when every service answered.
    pub fn all_up(&self) -> bool {
        self.services.iter().all(|s| s.up)
    }

    /// The entry of one service.
    pub fn get(&self, service: Service) -> Option<&ServiceHealth> {
        self.services.iter().find(|s| s.service == service)
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in &self.services {
            writeln!(
                f,
                "{:<8} {:<22} {:<5} {:>5} ms  {}",
                s.service.to_string(),
                s.address,
                if s.up { "up" } else { "DOWN" },
                s.latency.as_millis(),
                s.detail
            )?;
        }
        Ok(())
    }
}

fn timed(
    service: Service,
    address: String,
    check: impl FnOnce() -> Result<String, Error>,
) -> ServiceHealth {
    let t0 = Instant::now();
    let r = check();
    let latency = t0.elapsed();
    match r {
        Ok(version) => ServiceHealth {
            service,
            address,
            up: true,
            latency,
            detail: version,
        },
        Err(e) => {
            let mut detail = e.to_string();
            if !detail.contains("Fix:") {
                detail.push_str(&format!(". Fix: {START_SERVICES_HINT}"));
            }
            ServiceHealth {
                service,
                address,
                up: false,
                latency,
                detail,
            }
        }
    }
}

fn check_kafka(s: &Settings) -> ServiceHealth {
    timed(Service::Kafka, s.kafka.clone(), || {
        let client = kafka::metadata_client(s)?;
        let md = client
            .fetch_metadata(None, Duration::from_secs(3))
            .map_err(|e| Error::down(Service::Kafka, &s.kafka, e))?;
        Ok(format!(
            "{} broker(s), {} topic(s)",
            md.brokers().len(),
            md.topics()
                .iter()
                .filter(|t| !t.name().starts_with("__"))
                .count()
        ))
    })
}

fn check_redis(s: &Settings) -> ServiceHealth {
    timed(Service::Redis, Settings::address_of(&s.redis), || {
        let mut con = redis::connect(s)?;
        let v = redis::server_version(&mut con).unwrap_or_else(|| "unknown version".into());
        Ok(format!("Redis {v}"))
    })
}

fn check_mariadb(s: &Settings) -> ServiceHealth {
    timed(Service::MariaDb, Settings::address_of(&s.mariadb), || {
        let mut c = mariadb::conn(s, None)?;
        let v: Option<String> = c
            .query_first("SELECT VERSION()")
            .map_err(|e| mariadb::map_err(&s.mariadb, "SELECT VERSION()", e))?;
        Ok(format!("MariaDB {}", v.unwrap_or_default()))
    })
}

/// Checks Kafka, Redis and MariaDB at the addresses of `settings`, all three at once.
pub fn health(settings: &Settings) -> Health {
    let checks: [fn(&Settings) -> ServiceHealth; 3] = [check_kafka, check_redis, check_mariadb];
    let handles: Vec<_> = checks
        .iter()
        .map(|check| {
            let s = settings.clone();
            let check = *check;
            runtime::handle().spawn_blocking(move || check(&s))
        })
        .collect();
    let services = handles
        .into_iter()
        .zip([Service::Kafka, Service::Redis, Service::MariaDb])
        .map(|(h, service)| {
            let address = match service {
                Service::Kafka => settings.kafka.clone(),
                Service::Redis => Settings::address_of(&settings.redis),
                Service::MariaDb => Settings::address_of(&settings.mariadb),
            };
            match runtime::block_on_timeout(h, Duration::from_secs(10), "a health check") {
                Ok(Ok(sh)) => sh,
                Ok(Err(e)) => ServiceHealth {
                    service,
                    address,
                    up: false,
                    latency: Duration::ZERO,
                    detail: format!("check failed: {e}"),
                },
                Err(e) => ServiceHealth {
                    service,
                    address,
                    up: false,
                    latency: Duration::from_secs(10),
                    detail: e.to_string(),
                },
            }
        })
        .collect();
    Health { services }
}
