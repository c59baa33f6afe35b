//! Processing-time clocks: the wall clock, and a manual clock for deterministic tests.
//!
//! Times in the engine are milliseconds since the Unix epoch in UTC (instants): a daylight-saving
//! change does not move them, and windows are aligned to multiples of their size since the epoch.
//!
//! The course's times are wall times of the machine's zone (`TZ`, else the system's): a visit's
//! `visit_date`, a window's `INTERVAL_TIMESTAMP`, chapter 6's dates (README, "Time zones"). So an
//! instant is shown and written as that zone's wall time, zone-less `YYYY-MM-DD HH:MM:SS`
//! ([`fmt_ms`], [`to_naive`]), and a wall time becomes an instant with [`wall_to_ms`], by Java's
//! rules (the course's Spark runs on Java): in a repeated autumn hour the earlier instant, in a
//! skipped spring hour the wall time read with the offset before the skip (so 02:30 in a skip
//! from 02:00 to 03:00 is 03:30). Two windows of a repeated hour show the same start.
//! The engine never lets a batch time go below the previous one, so a wall clock stepped back
//! (NTP) cannot make rows late (see `Checkpoint::last_batch_time_ms`).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{Local, LocalResult, NaiveDateTime, Offset, TimeZone};

/// A source of processing time in milliseconds.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> i64;
}

/// The machine's wall clock, in UTC.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis()
    }
}

/// A clock that moves only when told (tests).
#[derive(Debug, Default, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(start_ms: i64) -> ManualClock {
        ManualClock(Arc::new(AtomicI64::new(start_ms)))
    }
    pub fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Renders engine milliseconds as the machine's wall time, `YYYY-MM-DD HH:MM:SS`.
pub fn fmt_ms(ms: i64) -> String {
    to_naive(ms)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// Engine milliseconds as the machine's wall time (a naive date-time).
pub fn to_naive(ms: i64) -> Option<NaiveDateTime> {
    to_wall_in(&Local, ms)
}

/// Engine milliseconds as the wall time of `tz`.
pub fn to_wall_in<Tz: TimeZone>(tz: &Tz, ms: i64) -> Option<NaiveDateTime> {
    chrono::DateTime::from_timestamp_millis(ms).map(|d| d.with_timezone(tz).naive_local())
}

/// The instant (engine milliseconds) a wall time of the machine's zone names (see the module's
/// rules for repeated and skipped hours).
pub fn wall_to_ms(wall: NaiveDateTime) -> i64 {
    wall_to_ms_in(&Local, wall)
}

/// [`wall_to_ms`] in the zone `tz`.
pub fn wall_to_ms_in<Tz: TimeZone>(tz: &Tz, wall: NaiveDateTime) -> i64 {
    match tz.from_local_datetime(&wall) {
        LocalResult::Single(t) => t.timestamp_millis(),
        LocalResult::Ambiguous(a, b) => a.timestamp_millis().min(b.timestamp_millis()),
        LocalResult::None => {
            // Skipped: the offset in force before the skip (the latest wall time before it that
            // exists); skips are at most a few hours long.
            let before = (1..=96)
                .map(|q| wall - chrono::Duration::minutes(15 * q))
                .find_map(|w| tz.from_local_datetime(&w).latest())
                .map(|t| t.offset().fix());
            match before {
                Some(o) => (wall - chrono::Duration::seconds(i64::from(o.local_minus_utc())))
                    .and_utc()
                    .timestamp_millis(),
                None => wall.and_utc().timestamp_millis(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{FixedOffset, NaiveDate};

    /// Central European time in 2024, hand-checked: UTC+1, and UTC+2 from 2024-03-31 01:00 UTC
    /// (02:00 local jumps to 03:00) to 2024-10-27 01:00 UTC (03:00 local falls back to 02:00).
    #[derive(Debug, Clone, Copy)]
    struct Cet2024;

    fn utc(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").expect("date-time")
    }

    impl Cet2024 {
        fn offset_at_utc(utc_time: &NaiveDateTime) -> FixedOffset {
            let summer =
                *utc_time >= utc("2024-03-31 01:00:00") && *utc_time < utc("2024-10-27 01:00:00");
            FixedOffset::east_opt(if summer { 7200 } else { 3600 }).expect("offset")
        }
    }

    impl TimeZone for Cet2024 {
        type Offset = FixedOffset;
        fn from_offset(_: &FixedOffset) -> Cet2024 {
            Cet2024
        }
        fn offset_from_local_date(&self, local: &NaiveDate) -> LocalResult<FixedOffset> {
            self.offset_from_local_datetime(&local.and_hms_opt(12, 0, 0).expect("noon"))
        }
        fn offset_from_local_datetime(&self, local: &NaiveDateTime) -> LocalResult<FixedOffset> {
            // Each offset that maps some UTC time to this wall time.
            let fits: Vec<FixedOffset> = [3600, 7200]
                .into_iter()
                .filter_map(|secs| {
                    let o = FixedOffset::east_opt(secs)?;
                    let u = *local - chrono::Duration::seconds(i64::from(secs));
                    (Cet2024::offset_at_utc(&u) == o).then_some(o)
                })
                .collect();
            match fits.as_slice() {
                [] => LocalResult::None,
                [o] => LocalResult::Single(*o),
                [a, b] => LocalResult::Ambiguous(*b, *a),
                _ => unreachable!("two offsets at most"),
            }
        }
        fn offset_from_utc_date(&self, utc_date: &NaiveDate) -> FixedOffset {
            Cet2024::offset_at_utc(&utc_date.and_hms_opt(0, 0, 0).expect("midnight"))
        }
        fn offset_from_utc_datetime(&self, utc_time: &NaiveDateTime) -> FixedOffset {
            Cet2024::offset_at_utc(utc_time)
        }
    }

    fn ms(utc_text: &str) -> i64 {
        utc(utc_text).and_utc().timestamp_millis()
    }

    #[test]
    fn the_repeated_autumn_hour_reads_as_its_first_pass_and_both_passes_show_the_same_wall_time() {
        let tz = Cet2024;
        // 02:30 happens twice: 00:30 UTC (summer time) and 01:30 UTC (winter time).
        assert_eq!(
            wall_to_ms_in(&tz, utc("2024-10-27 02:30:00")),
            ms("2024-10-27 00:30:00")
        );
        assert_eq!(
            wall_to_ms_in(&tz, utc("2024-10-27 01:59:59")),
            ms("2024-10-26 23:59:59")
        );
        assert_eq!(
            wall_to_ms_in(&tz, utc("2024-10-27 03:00:00")),
            ms("2024-10-27 02:00:00")
        );
        let first = to_wall_in(&tz, ms("2024-10-27 00:30:00"));
        let second = to_wall_in(&tz, ms("2024-10-27 01:30:00"));
        assert_eq!(first, Some(utc("2024-10-27 02:30:00")));
        assert_eq!(
            second, first,
            "two windows of the repeated hour show one start"
        );
    }

    #[test]
    fn a_skipped_spring_hour_reads_with_the_offset_before_the_skip() {
        let tz = Cet2024;
        // 02:30 does not exist on 2024-03-31: read at +01:00 it is 01:30 UTC, shown as 03:30.
        let t = wall_to_ms_in(&tz, utc("2024-03-31 02:30:00"));
        assert_eq!(t, ms("2024-03-31 01:30:00"));
        assert_eq!(to_wall_in(&tz, t), Some(utc("2024-03-31 03:30:00")));
        assert_eq!(
            wall_to_ms_in(&tz, utc("2024-03-31 01:59:59")),
            ms("2024-03-31 00:59:59")
        );
    }

    #[test]
    fn a_fixed_zone_far_from_utc_moves_every_time_by_its_offset() {
        // Kiritimati (+14) and Etc/GMT+12 (-12): a wall time and its instant are on other dates.
        for secs in [14 * 3600, -12 * 3600] {
            let tz = FixedOffset::east_opt(secs).expect("offset");
            let wall = utc("2026-12-04 05:00:00");
            let t = wall_to_ms_in(&tz, wall);
            assert_eq!(t, ms("2026-12-04 05:00:00") - i64::from(secs) * 1000);
            assert_eq!(to_wall_in(&tz, t), Some(wall));
        }
    }
}
