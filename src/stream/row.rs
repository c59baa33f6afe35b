//! What a stream carries: the [`Row`] trait (how a Kafka value becomes a typed row) and the
//! raw-string row used by chapter 6.
//!
//! A row type decodes itself from the record's value bytes and may refuse it with a reason: the
//! engine then dead-letters the record instead of stopping. [`decode_json`] is the usual body of
//! [`Row::decode`] for serde types.

use serde::de::DeserializeOwned;

/// A typed row decoded from a Kafka record value.
pub trait Row: Clone + Send + Sync + 'static {
    /// Decodes (and validates) one value; `Err(reason)` sends the record to the dead-letter topic.
    fn decode(value: &[u8]) -> std::result::Result<Self, String>;
}

/// Decodes a JSON value with serde, with a short reason on failure.
pub fn decode_json<T: DeserializeOwned>(value: &[u8]) -> std::result::Result<T, String> {
    serde_json::from_slice(value).map_err(|e| format!("malformed JSON: {e}"))
}

/// Serde `with` module for a timestamp without time zone written `YYYY-MM-DD HH:MM:SS`, for a
/// record type declared in a cell: `#[serde(with = "bde_kit::stream::row::naive_datetime")]`.
/// Decoding reads the text in place (no copy) and parses the fixed layout directly, which is
/// several times faster than a format string per row (streams decode millions of them).
pub mod naive_datetime {
    use chrono::{NaiveDate, NaiveDateTime};
    use serde::{de, Deserializer, Serializer};

    /// The format: `2024-08-12 13:01:16`.
    pub const FORMAT: &str = "%Y-%m-%d %H:%M:%S";

    pub fn serialize<S: Serializer>(d: &NaiveDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&d.format(FORMAT))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDateTime, D::Error> {
        d.deserialize_str(Text)
    }

    /// `YYYY-MM-DD HH:MM:SS` exactly, or `None`.
    pub fn parse(s: &str) -> Option<NaiveDateTime> {
        let b = s.as_bytes();
        if b.len() != 19
            || b[4] != b'-'
            || b[7] != b'-'
            || b[10] != b' '
            || b[13] != b':'
            || b[16] != b':'
        {
            return None;
        }
        let num = |from: usize, to: usize| -> Option<u32> {
            b[from..to].iter().try_fold(0u32, |acc, c| {
                c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
            })
        };
        let date = NaiveDate::from_ymd_opt(num(0, 4)? as i32, num(5, 7)?, num(8, 10)?)?;
        date.and_hms_opt(num(11, 13)?, num(14, 16)?, num(17, 19)?)
    }

    struct Text;

    impl de::Visitor<'_> for Text {
        type Value = NaiveDateTime;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            write!(f, "a timestamp {FORMAT}")
        }

        fn visit_str<E: de::Error>(self, s: &str) -> Result<NaiveDateTime, E> {
            parse(s).ok_or_else(|| match NaiveDateTime::parse_from_str(s, FORMAT) {
                Err(e) => E::custom(format!("'{s}' is not a timestamp {FORMAT}: {e}")),
                Ok(_) => E::custom(format!("'{s}' is not a timestamp {FORMAT}")),
            })
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn the_fast_parse_agrees_with_chrono() {
            for s in [
                "2024-08-12 13:01:16",
                "1999-12-31 23:59:59",
                "2024-02-29 00:00:00",
            ] {
                assert_eq!(
                    parse(s),
                    NaiveDateTime::parse_from_str(s, FORMAT).ok(),
                    "{s}"
                );
            }
            for bad in [
                "2023-02-29 00:00:00",
                "2024-08-12T13:01:16",
                "2024-08-12 13:01",
                "2024-08-12 25:00:00",
                "2024-0a-12 13:01:16",
                "+024-08-12 13:01:16",
            ] {
                assert_eq!(parse(bad), None, "{bad}");
            }
        }
    }
}

/// A plain string value (chapter 6's topic carries action names such as `FAQ`).
impl Row for String {
    fn decode(value: &[u8]) -> std::result::Result<Self, String> {
        std::str::from_utf8(value)
            .map(str::to_string)
            .map_err(|e| format!("value is not UTF-8: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_strings_decode_and_bad_utf8_is_refused() {
        assert_eq!(String::decode(b"FAQ").as_deref(), Ok("FAQ"));
        assert!(String::decode(&[0xff, 0xfe]).is_err());
    }
}
