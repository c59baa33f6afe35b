//! Notebook 5 (`code_04_05_Spark_BDE_Execute_the_pipeline`): the live pipeline monitor.
//!
//! Every 5 s (the course's pace; 1 s in fast mode, [`Settings::fast`]) it prints the course's block: new
//! abandoned-cart lines from Kafka (no group, from the latest offsets, a short poll so lines are
//! not missed), country totals from Redis highest first, and the per-action sums from MariaDB.
//! Unlike the course's endless loop it stops after a number of refreshes or a duration, so the
//! cell returns; its value is one HTML block with the tables and charts (country totals, sums
//! per action, window sums over time).

use std::time::{Duration, Instant};

use mysql::prelude::Queryable;

use crate::config::Settings;
use crate::error::Result;
use crate::io::{kafka, mariadb, redis};
use crate::show::live::Live;
use crate::show::{Chart, Report, Table};
use crate::untrusted::line;

pub use crate::course::names::{CARTS_TOPIC, COUNTRY_KEY, STATS_DB};

/// One refresh's reads: new abandoned-cart lines, the country totals (highest first) and the
/// sums per action.
#[derive(Debug, Clone, Default)]
pub struct Reading {
    pub carts: Vec<String>,
    pub countries: Vec<(String, f64)>,
    pub actions: Vec<(String, i64)>,
}

/// What to watch and for how long.
#[derive(Debug, Clone)]
pub struct Monitor {
    every: Duration,
    refreshes: Option<usize>,
    duration: Option<Duration>,
    /// Stop once this query has been seen running and then stopped.
    until_job_stops: Option<String>,
    carts_topic: String,
    country_key: String,
    db: String,
    settings: Settings,
}

/// What the monitor saw: the cart lines, the last figures and their history.
#[derive(Debug, Clone, Default)]
pub struct MonitorReport {
    pub refreshes: usize,
    pub carts: Vec<String>,
    pub countries: Vec<(String, f64)>,
    pub actions: Vec<(String, i64)>,
    /// (seconds since the monitor started, per-action sums) at each refresh.
    pub history: Vec<(f64, Vec<(String, i64)>)>,
    /// Window sums from `visit_stats`: (window start as Unix seconds, action, sum).
    pub windows: Vec<(i64, String, i64)>,
}

impl Monitor {
    /// The course's monitor: every 5 s for at most 36 refreshes (3 minutes, a generator run),
    /// and it stops earlier once the analytics job (notebook 4) has run and stopped; with
    /// [`Settings::fast`], every second for at most 10 minutes. It reads the servers of `settings`.
    pub fn course(settings: &Settings) -> Monitor {
        let fast = settings.fast;
        Monitor {
            every: Duration::from_secs(if fast { 1 } else { 5 }),
            refreshes: Some(if fast { 600 } else { 36 }),
            until_job_stops: Some(crate::course::analytics::JOB_NAME.into()),
            duration: None,
            carts_topic: CARTS_TOPIC.into(),
            country_key: COUNTRY_KEY.into(),
            db: STATS_DB.into(),
            settings: settings.clone(),
        }
    }

    pub fn every(mut self, d: Duration) -> Self {
        self.every = d;
        self
    }

    /// Stop after `n` refreshes.
    pub fn refreshes(mut self, n: usize) -> Self {
        self.refreshes = Some(n);
        self.duration = None;
        self
    }

    /// Stop once `d` has passed.
    pub fn for_duration(mut self, d: Duration) -> Self {
        self.duration = Some(d);
        self.refreshes = None;
        self
    }

    /// Stop early once the query `name` has been seen running (in any kernel) and then stopped;
    /// `None` refreshes for the whole bound.
    pub fn until_job_stops(mut self, name: Option<&str>) -> Self {
        self.until_job_stops = name.map(str::to_string);
        self
    }

    /// Other names (tests use their own topic, key and database).
    pub fn names(mut self, carts_topic: &str, country_key: &str, db: &str) -> Self {
        self.carts_topic = carts_topic.into();
        self.country_key = country_key.into();
        self.db = db.into();
        self
    }

    /// The live dashboard of the pipeline in the cell's output (an iframe updated every second,
    /// served by this kernel; see [`crate::show::dashboard`]): the carts topic's newest lines,
    /// the country totals, the window sums per action and the job's progress (from its handle
    /// when the job runs in this kernel, else whether it runs in another one). Returns at once.
    pub fn dashboard(&self) -> Result<crate::show::DashboardHandle> {
        let tail = kafka::Tail::latest(&self.settings, &self.carts_topic)?;
        let (s1, s2, key, db) = (
            self.settings.clone(),
            self.settings.clone(),
            self.country_key.clone(),
            self.db.clone(),
        );
        let mut d = crate::show::Dashboard::new("Pipeline monitor")
            .lines(
                format!("Shopping Cart from Kafka ({})", self.carts_topic),
                move || tail.poll(Duration::from_millis(100)),
            )
            .bars(format!("Country Stats from Redis ({key})"), move || {
                redis::scores(&s1, &key)
            })
            .series(
                format!("5-second window sums per action (MariaDB {db}.visit_stats)"),
                move || {
                    Ok(window_sums(&s2, &db)?
                        .into_iter()
                        .map(|(t, a, s)| (t, a, s as f64))
                        .collect())
                },
            );
        if let Some(job) = &self.until_job_stops {
            d = d
                .query_named(job, &self.settings)
                .not_running_note("start it (notebook 4); this panel follows it once it runs");
        }
        d.start()
    }

    /// Runs the refresh loop with the course's three reads (see [`Monitor::run_with`]).
    pub fn run(self) -> Result<MonitorReport> {
        let tail = kafka::Tail::latest(&self.settings, &self.carts_topic)?;
        let (settings, key, db) = (
            self.settings.clone(),
            self.country_key.clone(),
            self.db.clone(),
        );
        self.run_with(move || {
            Ok(Reading {
                carts: tail.poll(Duration::from_millis(500))?,
                countries: redis::zrevrangebyscore(&settings, &key, 99999.0, 0.0)?,
                actions: action_sums(&settings, &db)?,
            })
        })
    }

    /// Runs the refresh loop: every refresh calls `read` (the three reads of the course's
    /// monitor), prints the course's block and keeps the figures; returns what it saw. Cart lines,
    /// Redis members and action names are printed one line each through
    /// [`crate::untrusted::line`] and kept as they are in the report (whose tables and charts
    /// escape them when rendered).
    pub fn run_with(self, mut read: impl FnMut() -> Result<Reading>) -> Result<MonitorReport> {
        let mut live = Live::every(self.every);
        live = match (self.refreshes, self.duration) {
            (_, Some(d)) => live.for_duration(d),
            (Some(n), None) => live.refreshes(n),
            (None, None) => live,
        };
        let started = Instant::now();
        let mut report = MonitorReport::default();
        let mut job_seen = false;
        let job = self.until_job_stops.clone();
        let settings = self.settings.clone();
        let job_done = move || match &job {
            Some(name) => {
                let running = crate::course::analytics::is_running(&settings, name);
                let done = job_seen && !running;
                job_seen |= running;
                done
            }
            None => false,
        };
        let n = live.run_until(
            |_| {
                let Reading {
                    carts: new_carts,
                    countries,
                    actions,
                } = read()?;
                let mut block = section("Shopping Cart from Kafka");
                for l in &new_carts {
                    block.push_str(&line(l));
                    block.push('\n');
                }
                block.push_str(&section("Country Stats from Redis"));
                for (c, s) in &countries {
                    block.push_str(&format!("{}  =  {s:.1}\n", line(c)));
                }
                block.push_str(&section("Last Action stats from mariaDB"));
                for (a, s) in &actions {
                    block.push_str(&format!("{}  =  {s}\n", line(a)));
                }
                report.carts.extend(new_carts);
                report
                    .history
                    .push((started.elapsed().as_secs_f64(), actions.clone()));
                report.countries = countries;
                report.actions = actions;
                Ok(block)
            },
            job_done,
        )?;
        report.refreshes = n;
        report.windows = window_sums(&self.settings, &self.db)?;
        Ok(report)
    }
}

fn section(title: &str) -> String {
    format!("{title}\n{}\n", "-".repeat(title.len()))
}

/// The course's summary: SUM(DURATION) per LAST_ACTION over all rows of `visit_stats`.
pub fn action_sums(settings: &Settings, db: &str) -> Result<Vec<(String, i64)>> {
    let mut c = mariadb::conn(settings, Some(db))?;
    c.query_map(
        "SELECT LAST_ACTION, CAST(SUM(DURATION) AS SIGNED) FROM visit_stats GROUP BY LAST_ACTION ORDER BY LAST_ACTION",
        |(a, s): (Option<String>, Option<i64>)| (a.unwrap_or_default(), s.unwrap_or(0)),
    )
    .map_err(|e| mariadb::map_err(&settings.mariadb, "sum visit_stats per action", e))
}

/// Window sums of the last hour: (window start as Unix seconds of the naive time, action, sum).
/// "The last hour" is the machine's wall time, as `INTERVAL_TIMESTAMP` is (the server's `NOW()`
/// is the server's zone, which may be another one).
pub fn window_sums(settings: &Settings, db: &str) -> Result<Vec<(i64, String, i64)>> {
    let since = (chrono::Local::now().naive_local() - chrono::Duration::hours(1))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    let mut c = mariadb::conn(settings, Some(db))?;
    c.exec_map(
        "SELECT TIMESTAMPDIFF(SECOND, '1970-01-01 00:00:00', INTERVAL_TIMESTAMP), LAST_ACTION, \
         CAST(SUM(DURATION) AS SIGNED) FROM visit_stats \
         WHERE INTERVAL_TIMESTAMP >= ? GROUP BY INTERVAL_TIMESTAMP, LAST_ACTION ORDER BY INTERVAL_TIMESTAMP",
        (since,),
        |(t, a, s): (Option<i64>, Option<String>, Option<i64>)| (t.unwrap_or(0), a.unwrap_or_default(), s.unwrap_or(0)),
    )
    .map_err(|e| mariadb::map_err(&settings.mariadb, "read window sums", e))
}

impl MonitorReport {
    /// Tables and charts in one block.
    pub fn report(&self) -> Report {
        let countries = Table::from_rows(
            &["country", "total duration"],
            self.countries
                .iter()
                .map(|(c, s)| vec![c.clone(), format!("{s}")])
                .collect(),
        );
        let actions = Table::from_rows(
            &["last action", "total duration"],
            self.actions
                .iter()
                .map(|(a, s)| vec![a.clone(), s.to_string()])
                .collect(),
        );
        let carts = Table::from_rows(
            &["abandoned carts seen (Kafka)"],
            self.carts.iter().map(|l| vec![l.clone()]).collect(),
        )
        .rows(10);
        let mut series: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
        for (t, a, s) in &self.windows {
            match series.iter_mut().find(|(name, _)| name == a) {
                Some((_, pts)) => pts.push((*t as f64, *s as f64)),
                None => series.push((a.clone(), vec![(*t as f64, *s as f64)])),
            }
        }
        Report::new()
            .heading(format!(
                "Pipeline monitor: {} refreshes, {} cart lines",
                self.refreshes,
                self.carts.len()
            ))
            .table(countries)
            .chart(Chart::bar(
                "Duration by country (Redis)",
                self.countries.iter().map(|c| c.0.clone()).collect(),
                self.countries.iter().map(|c| c.1).collect(),
            ))
            .table(actions)
            .chart(Chart::bar(
                "Duration by last action (MariaDB)",
                self.actions.iter().map(|a| a.0.clone()).collect(),
                self.actions.iter().map(|a| a.1 as f64).collect(),
            ))
            .chart(
                Chart::lines("5-second window sums (last hour)", series)
                    .time_axis()
                    .axes("window start", "duration"),
            )
            .table(carts)
    }

    /// Rich output for evcxr.
    pub fn evcxr_display(&self) {
        self.report().evcxr_display();
    }
}
