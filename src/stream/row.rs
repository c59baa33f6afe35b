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
pub mod naive_datetime {
    use chrono::NaiveDateTime;
    use serde::{Deserialize, Deserializer, Serializer};

    /// The format: `2024-08-12 13:01:16`.
    pub const FORMAT: &str = "%Y-%m-%d %H:%M:%S";

    pub fn serialize<S: Serializer>(d: &NaiveDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&d.format(FORMAT).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDateTime, D::Error> {
        let s = String::deserialize(d)?;
        NaiveDateTime::parse_from_str(&s, FORMAT).map_err(|e| serde::de::Error::custom(format!("'{s}' is not a timestamp {FORMAT}: {e}")))
    }
}

/// A plain string value (chapter 6's topic carries action names such as `FAQ`).
impl Row for String {
    fn decode(value: &[u8]) -> std::result::Result<Self, String> {
        std::str::from_utf8(value).map(str::to_string).map_err(|e| format!("value is not UTF-8: {e}"))
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
