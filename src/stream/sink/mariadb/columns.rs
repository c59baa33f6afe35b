//! What a MariaDB column accepts, read from `information_schema.COLUMNS` when the sink opens,
//! so the sink can tell a row the server would always refuse (a number out of the column's
//! range, a text longer than the column or outside its character set, a NULL for a `NOT NULL`
//! column, a year past 9999, a NaN) before the batch's transaction: such rows become dead
//! letters instead of failing the batch forever.
//!
//! The checks follow the server's strict mode (`STRICT_TRANS_TABLES`, MariaDB's default). Without
//! strict mode the server would truncate such values with a warning; the sink still refuses them,
//! so nothing is stored cut short. Values the checks do not understand (an unusual date format,
//! a type not listed here) pass: the server stays the judge of those.

use mysql::Value;

/// The limits of one column.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnLimit {
    pub name: String,
    pub kind: Kind,
    /// NULL is refused (a `NOT NULL` column without auto-increment or timestamp default).
    pub not_null: bool,
}

/// The value domain of a column type.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// Integer types, with their inclusive range.
    Int { min: i128, max: i128 },
    /// Floating point and decimal types: finite values only; decimals also bound the integer digits.
    Real { int_digits: Option<u32> },
    /// Text types: at most `max_chars` characters and `max_bytes` UTF-8 bytes, in `charset`.
    Text {
        max_chars: Option<u64>,
        max_bytes: Option<u64>,
        charset: Charset,
    },
    /// DATE, DATETIME, TIMESTAMP: the year range.
    Date { min_year: i32, max_year: i32 },
    /// Anything else: not checked.
    Other,
}

/// The character repertoire of a text column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    /// utf8mb4, binary and unknown sets: every character.
    Any,
    /// utf8mb3: the basic multilingual plane only.
    Bmp,
    /// latin1 (MariaDB's cp1252).
    Latin1,
}

/// One row of `information_schema.COLUMNS`:
/// (name, data type, column type, max chars, max bytes, precision, scale, nullable, charset, extra).
pub type ColumnRow = (
    String,
    String,
    String,
    Option<u64>,
    Option<u64>,
    Option<u64>,
    Option<u64>,
    String,
    Option<String>,
    String,
);

/// The query that reads [`ColumnRow`]s of a table (parameters: schema, table).
pub const COLUMNS_SQL: &str = "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, CHARACTER_MAXIMUM_LENGTH, CHARACTER_OCTET_LENGTH, \
     NUMERIC_PRECISION, NUMERIC_SCALE, IS_NULLABLE, CHARACTER_SET_NAME, EXTRA FROM information_schema.COLUMNS \
     WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?";

impl ColumnLimit {
    /// The limits described by one row of `information_schema.COLUMNS`.
    pub fn from_row(r: ColumnRow) -> ColumnLimit {
        let (
            name,
            data_type,
            column_type,
            max_chars,
            max_bytes,
            precision,
            scale,
            nullable,
            charset,
            extra,
        ) = r;
        let data_type = data_type.to_ascii_lowercase();
        let unsigned = column_type.to_ascii_lowercase().contains("unsigned");
        let int = |bits: u32| {
            if unsigned {
                Kind::Int {
                    min: 0,
                    max: (1i128 << bits) - 1,
                }
            } else {
                Kind::Int {
                    min: -(1i128 << (bits - 1)),
                    max: (1i128 << (bits - 1)) - 1,
                }
            }
        };
        let kind = match data_type.as_str() {
            "tinyint" => int(8),
            "smallint" => int(16),
            "mediumint" => int(24),
            "int" | "integer" => int(32),
            "bigint" => int(64),
            "float" | "double" | "real" => Kind::Real { int_digits: None },
            "decimal" | "numeric" => Kind::Real {
                int_digits: precision
                    .map(|p| p.saturating_sub(scale.unwrap_or(0)).min(u32::MAX as u64) as u32),
            },
            "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" => {
                let charset = match charset.as_deref().map(str::to_ascii_lowercase).as_deref() {
                    Some("utf8") | Some("utf8mb3") => Charset::Bmp,
                    Some("latin1") => Charset::Latin1,
                    _ => Charset::Any,
                };
                let chars_are_limit = matches!(data_type.as_str(), "char" | "varchar");
                Kind::Text {
                    max_chars: if chars_are_limit { max_chars } else { None },
                    max_bytes: if chars_are_limit { None } else { max_bytes },
                    charset,
                }
            }
            "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => {
                Kind::Text {
                    max_chars: None,
                    max_bytes: max_bytes.or(max_chars),
                    charset: Charset::Any,
                }
            }
            "date" | "datetime" => Kind::Date {
                min_year: 0,
                max_year: 9999,
            },
            "timestamp" => Kind::Date {
                min_year: 1970,
                max_year: 2038,
            },
            _ => Kind::Other,
        };
        let not_null = nullable.eq_ignore_ascii_case("NO")
            && !extra.to_ascii_lowercase().contains("auto_increment")
            && data_type != "timestamp";
        ColumnLimit {
            name,
            kind,
            not_null,
        }
    }

    /// Why the column would refuse `v`, or `None` when it accepts it.
    pub fn refuses(&self, v: &Value) -> Option<String> {
        let col = &self.name;
        if matches!(v, Value::NULL) {
            return self
                .not_null
                .then(|| format!("{col} is NOT NULL but the value is NULL"));
        }
        match &self.kind {
            Kind::Int { min, max } => {
                let n: Option<f64> = match v {
                    Value::Int(i) => return out_of(col, *i as i128, *min, *max),
                    Value::UInt(u) => return out_of(col, *u as i128, *min, *max),
                    Value::Float(f) => Some(*f as f64),
                    Value::Double(d) => Some(*d),
                    Value::Bytes(b) => {
                        let t = String::from_utf8_lossy(b);
                        let t = t.trim();
                        if let Ok(i) = t.parse::<i128>() {
                            return out_of(col, i, *min, *max);
                        }
                        match t.parse::<f64>() {
                            Ok(d) => Some(d),
                            Err(_) => {
                                return Some(format!(
                                    "{col} holds integers but the value {} is not a number",
                                    shorten(t)
                                ))
                            }
                        }
                    }
                    _ => None,
                };
                let d = n?;
                if !d.is_finite() {
                    return Some(format!("{col} holds integers but the value is {d}"));
                }
                let r = d.round();
                (r < *min as f64 || r > *max as f64)
                    .then(|| format!("{col} holds {min}..={max} but the value is {d}"))
            }
            Kind::Real { int_digits } => {
                let d = match v {
                    Value::Float(f) => *f as f64,
                    Value::Double(d) => *d,
                    Value::Int(i) => *i as f64,
                    Value::UInt(u) => *u as f64,
                    Value::Bytes(b) => String::from_utf8_lossy(b).trim().parse::<f64>().ok()?,
                    _ => return None,
                };
                if !d.is_finite() {
                    return Some(format!("{col} holds finite numbers but the value is {d}"));
                }
                let digits = (*int_digits)?;
                let limit = 10f64.powi(digits.min(308) as i32);
                (d.abs().round() >= limit)
                    .then(|| format!("{col} holds numbers below 10^{digits} but the value is {d}"))
            }
            Kind::Text {
                max_chars,
                max_bytes,
                charset,
            } => {
                let text = match v {
                    Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
                    Value::Int(i) => i.to_string(),
                    Value::UInt(u) => u.to_string(),
                    Value::Double(d) => d.to_string(),
                    Value::Float(f) => f.to_string(),
                    _ => return None,
                };
                let chars = text.chars().count() as u64;
                if let Some(m) = max_chars.filter(|m| chars > *m) {
                    return Some(format!(
                        "{col} holds at most {m} characters but the value has {chars}: {}",
                        shorten(&text)
                    ));
                }
                let bytes = match v {
                    Value::Bytes(b) => b.len() as u64,
                    _ => text.len() as u64,
                };
                if let Some(m) = max_bytes.filter(|m| bytes > *m) {
                    return Some(format!(
                        "{col} holds at most {m} bytes but the value has {bytes}"
                    ));
                }
                let foreign = text.chars().find(|c| match charset {
                    Charset::Any => false,
                    Charset::Bmp => (*c as u32) > 0xFFFF,
                    Charset::Latin1 => (*c as u32) > 0xFF && !CP1252_EXTRA.contains(c),
                });
                foreign.map(|c| format!("{col} cannot store the character {c:?} (U+{:04X}) in its character set: {}", c as u32, shorten(&text)))
            }
            Kind::Date { min_year, max_year } => {
                let year: i64 = match v {
                    Value::Date(y, ..) => *y as i64,
                    Value::Bytes(b) => {
                        let t = String::from_utf8_lossy(b);
                        let t = t.trim();
                        // only the `[+-]YYYY-MM-DD…` form is judged; other forms pass to the server
                        let (sign, rest) = match t.strip_prefix(['+', '-']) {
                            Some(r) => (true, r),
                            None => (false, t),
                        };
                        let head = rest.split('-').next().unwrap_or_default();
                        if !rest.contains('-')
                            || head.is_empty()
                            || !head.chars().all(|c| c.is_ascii_digit())
                        {
                            return None;
                        }
                        if sign || head.len() > 4 {
                            return Some(format!(
                                "{col} holds years {min_year}..={max_year} but the value is {}",
                                shorten(t)
                            ));
                        }
                        head.parse().ok()?
                    }
                    _ => return None,
                };
                (year < *min_year as i64 || year > *max_year as i64).then(|| {
                    format!(
                        "{col} holds years {min_year}..={max_year} but the value's year is {year}"
                    )
                })
            }
            Kind::Other => None,
        }
    }
}

fn out_of(col: &str, n: i128, min: i128, max: i128) -> Option<String> {
    (n < min || n > max).then(|| format!("{col} holds {min}..={max} but the value is {n}"))
}

/// The first 64 characters of a value, for a reason text.
fn shorten(t: &str) -> String {
    let mut s: String = t.chars().take(64).collect();
    if s.len() < t.len() {
        s.push('…');
    }
    s
}

/// The cp1252 characters above U+00FF that MariaDB's latin1 stores.
const CP1252_EXTRA: [char; 27] = [
    '€', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', 'Ž', '‘', '’', '“', '”', '•', '–',
    '—', '˜', '™', 'š', '›', 'œ', 'ž', 'Ÿ',
];

#[cfg(test)]
mod tests {
    use super::*;

    fn col(
        data: &str,
        ty: &str,
        chars: Option<u64>,
        charset: Option<&str>,
        nullable: &str,
    ) -> ColumnLimit {
        ColumnLimit::from_row((
            "C".into(),
            data.into(),
            ty.into(),
            chars,
            chars.map(|c| c * 4),
            Some(10),
            Some(2),
            nullable.into(),
            charset.map(String::from),
            String::new(),
        ))
    }

    #[test]
    fn integers_text_dates_and_nulls_are_judged_like_strict_mode() {
        let int = col("int", "int(10)", None, None, "YES");
        assert_eq!(int.refuses(&Value::Int(2_147_483_647)), None);
        assert_eq!(int.refuses(&Value::Int(-2_147_483_648)), None);
        assert!(int
            .refuses(&Value::Int(2_147_483_648))
            .is_some_and(|r| r.contains("2147483647")));
        assert!(int.refuses(&Value::Double(f64::NAN)).is_some());
        assert!(int.refuses(&Value::Bytes(b"abc".to_vec())).is_some());
        assert_eq!(int.refuses(&Value::NULL), None);
        let uint = col("int", "int(10) unsigned", None, None, "NO");
        assert!(uint.refuses(&Value::Int(-1)).is_some());
        assert!(uint
            .refuses(&Value::NULL)
            .is_some_and(|r| r.contains("NOT NULL")));
        let text = col("varchar", "varchar(45)", Some(45), Some("utf8mb4"), "YES");
        assert_eq!(
            text.refuses(&Value::from("é".repeat(45))),
            None,
            "characters, not bytes"
        );
        assert!(text
            .refuses(&Value::from("x".repeat(46)))
            .is_some_and(|r| r.contains("45 characters")));
        let bmp = col("varchar", "varchar(45)", Some(45), Some("utf8mb3"), "YES");
        assert!(bmp.refuses(&Value::from("a🙂")).is_some());
        let latin = col("varchar", "varchar(45)", Some(45), Some("latin1"), "YES");
        assert_eq!(latin.refuses(&Value::from("café €")), None);
        assert!(latin.refuses(&Value::from("日本")).is_some());
        let date = col("datetime", "datetime", None, None, "YES");
        assert_eq!(date.refuses(&Value::from("2024-08-12 13:00:05")), None);
        assert!(date
            .refuses(&Value::from("+262143-01-01 00:00:00"))
            .is_some());
        assert!(date.refuses(&Value::from("12345-01-01 00:00:00")).is_some());
        assert_eq!(
            date.refuses(&Value::from("20240812130005")),
            None,
            "forms it does not parse pass to the server"
        );
        let dec = col("decimal", "decimal(10,2)", None, None, "YES");
        assert_eq!(dec.refuses(&Value::Double(99_999_999.0)), None);
        assert!(dec.refuses(&Value::Double(100_000_000.0)).is_some());
        assert!(dec.refuses(&Value::Double(f64::INFINITY)).is_some());
    }
}
