//! The course's visit record (chapter 4) for the generator, the tests, the benchmarks and the
//! crash-test worker: decoding, validation and the output formats (CSV line for the
//! abandoned-carts topic). Notebook 4 declares its own `Visit` in a cell, as the course declares
//! its schema.
//!
//! Value on `spark.streaming.website.visits`:
//! `{"country": "USA", "last_action": "Order", "visit_date": "2024-08-12 13:01:16", "duration": 11}`
//! (`visit_date` is the wall time of the machine's zone, as the course's generator writes it;
//! `duration` an integer number of seconds). The event time is the instant that wall time names
//! ([`crate::stream::clock::wall_to_ms`]).

use std::fmt::Write as _;

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use crate::stream::row::{decode_json, Row};

/// Format of `visit_date`.
pub const VISIT_DATE_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// One website visit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Visit {
    pub country: String,
    pub last_action: String,
    #[serde(with = "visit_date")]
    pub visit_date: NaiveDateTime,
    pub duration: i64,
}

/// `visit_date` as the course writes it (`YYYY-MM-DD HH:MM:SS`), decoded without a copy.
mod visit_date {
    use chrono::NaiveDateTime;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &NaiveDateTime, s: S) -> Result<S::Ok, S::Error> {
        crate::stream::row::naive_datetime::serialize(d, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDateTime, D::Error> {
        crate::stream::row::naive_datetime::deserialize(d)
            .map_err(|e| serde::de::Error::custom(format!("visit_date {e}")))
    }
}

impl Visit {
    /// A visit (no validation; see [`Visit::validate`]).
    pub fn new(
        country: &str,
        last_action: &str,
        visit_date: NaiveDateTime,
        duration: i64,
    ) -> Visit {
        Visit {
            country: country.into(),
            last_action: last_action.into(),
            visit_date,
            duration,
        }
    }

    /// Checks what serde cannot: a non-negative duration, and names that are not empty and have
    /// no control characters (a newline in a country would be a line of its own wherever it is
    /// printed: see [`crate::untrusted`]).
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.duration < 0 {
            return Err(format!("negative duration {}", self.duration));
        }
        for (field, v) in [
            ("country", &self.country),
            ("last_action", &self.last_action),
        ] {
            if v.trim().is_empty() {
                return Err(format!("empty {field}"));
            }
            if v.chars().any(char::is_control) {
                return Err(format!(
                    "control character in {field} {}",
                    crate::untrusted::line(v)
                ));
            }
        }
        Ok(())
    }

    /// The JSON value the course's generator writes (fields in the course's order).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// `country,last_action,visit_date,duration` with the date as `YYYY-MM-DD HH:MM:SS`.
    pub fn csv_line(&self) -> String {
        let mut line = String::new();
        self.write_csv_line(&mut line);
        line
    }

    /// Appends [`Visit::csv_line`] to `out` (for a sink that reuses one buffer:
    /// `KafkaSink::writing(topic, Visit::write_csv_line)`).
    pub fn write_csv_line(&self, out: &mut String) {
        self.write_line_with_date(out, self.visit_date.format(VISIT_DATE_FORMAT));
    }

    /// The line Spark's `format_string('%s,%s,%s,%d')` produces: the date as microseconds since
    /// the epoch (the instant of the local wall time), e.g. `Australia,ShoppingCart,1767311159000000,5`.
    pub fn spark_csv_line(&self) -> String {
        let mut line = String::new();
        self.write_spark_csv_line(&mut line);
        line
    }

    /// Appends [`Visit::spark_csv_line`] to `out`.
    pub fn write_spark_csv_line(&self, out: &mut String) {
        self.write_line_with_date(out, self.event_ms() * 1000);
    }

    /// Appends `country,last_action,date,duration`: the two lines differ only in the date.
    fn write_line_with_date(&self, out: &mut String, date: impl std::fmt::Display) {
        let _ = write!(
            out,
            "{},{},{date},{}",
            self.country, self.last_action, self.duration
        );
    }

    /// Event time in the engine's clock: the instant `visit_date` names in the machine's zone.
    pub fn event_ms(&self) -> i64 {
        crate::stream::clock::wall_to_ms(self.visit_date)
    }
}

impl Row for Visit {
    fn decode(value: &[u8]) -> std::result::Result<Self, String> {
        let v: Visit = decode_json(value)?;
        v.validate()?;
        Ok(v)
    }
}

/// The course generator's countries.
pub const COUNTRIES: [&str; 5] = ["USA", "India", "Brazil", "Australia", "Russia"];
/// The course generator's last actions.
pub const ACTIONS: [&str; 4] = ["Catalog", "FAQ", "Order", "ShoppingCart"];

/// A random visit as the course's generator makes it (duration 1..=20).
pub fn random_visit(rng: &mut impl rand::Rng, visit_date: NaiveDateTime) -> Visit {
    let c = COUNTRIES[rng.random_range(0..COUNTRIES.len())];
    let a = ACTIONS[rng.random_range(0..ACTIONS.len())];
    Visit::new(c, a, visit_date, rng.random_range(1..=20))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn decodes_the_course_value_and_formats_csv() {
        let v = Visit::decode(br#"{"country": "USA", "last_action": "Order", "visit_date": "2024-08-12 13:01:16", "duration": 11}"#)
            .expect("valid visit");
        assert_eq!(v.country, "USA");
        assert_eq!(v.duration, 11);
        assert_eq!(v.csv_line(), "USA,Order,2024-08-12 13:01:16,11");
        let utc_ms = 1_723_467_676_000; // 2024-08-12 13:01:16 read as UTC
        let offset_ms = i64::from(
            chrono::Local
                .from_local_datetime(&v.visit_date)
                .earliest()
                .expect("exists")
                .offset()
                .local_minus_utc(),
        ) * 1000;
        assert_eq!(
            v.event_ms(),
            utc_ms - offset_ms,
            "the local wall time's instant"
        );
        assert_eq!(
            v.spark_csv_line(),
            format!("USA,Order,{},11", (utc_ms - offset_ms) * 1000)
        );
        assert_eq!(Visit::decode(v.to_json().as_bytes()), Ok(v));
    }

    #[test]
    fn refuses_bad_visits_with_a_reason() {
        let bad: [(&[u8], &str); 7] = [
            (b"{not json", "malformed"),
            (br#"{"country":"USA","last_action":"Order","visit_date":"2024-08-12 13:01:16","duration":1,"x":1}"#, "unknown field"),
            (br#"{"country":"USA","last_action":"Order","visit_date":"2024-08-12 13:01:16","duration":-3}"#, "negative"),
            (br#"{"country":null,"last_action":"Order","visit_date":"2024-08-12 13:01:16","duration":1}"#, "null"),
            (br#"{"country":"USA","last_action":"Order","visit_date":"12/08/2024","duration":1}"#, "visit_date"),
            (br#"{"country":"X\nEVCXR_BEGIN_CONTENT text/html\n<img src=x onerror=alert(1)>\nEVCXR_END_CONTENT","last_action":"Order","visit_date":"2024-08-12 13:01:16","duration":1}"#, "control character in country X\\nEVCXR\\_BEGIN"),
            (br#"{"country":"USA","last_action":"Order\r","visit_date":"2024-08-12 13:01:16","duration":1}"#, "control character in last_action"),
        ];
        for (value, reason) in bad {
            let e = Visit::decode(value).expect_err("must be refused");
            assert!(e.contains(reason), "{e} should mention {reason}");
        }
    }
}
