//! Spark's JDBC column partitioning: the ranges of an integer column that a partitioned read
//! (or a partitioned upload) gives each worker, with Spark's stride rule.

use crate::error::{Error, Result};

/// One range of a partitioned read: a condition on the partition column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangePartition {
    /// Partition number (0-based): also the part-file number a writer uses.
    pub index: usize,
    /// Inclusive lower bound, `None` for the first partition (which also takes NULLs).
    pub from: Option<i64>,
    /// Exclusive upper bound, `None` for the last partition.
    pub to: Option<i64>,
}

impl RangePartition {
    /// The WHERE condition for column `column`, as Spark writes it.
    pub fn condition(&self, column: &str) -> String {
        match (self.from, self.to) {
            (None, None) => "1=1".to_string(),
            (None, Some(t)) => format!("{column} < {t} OR {column} IS NULL"),
            (Some(f), None) => format!("{column} >= {f}"),
            (Some(f), Some(t)) => format!("{column} >= {f} AND {column} < {t}"),
        }
    }
}

/// Spark's JDBC column-partitioning rule (`JDBCRelation.columnPartition`).
///
/// stride = ⌊upper/n⌋ − ⌊lower/n⌋; partition 0 gets `col < lower+stride OR col IS NULL`, the
/// last gets `col >= lower+(n−1)·stride`, the middle ones half-open ranges. When the range is
/// smaller than `n`, Spark lowers `n` to `upper − lower`. With (1, 31, 2) the split is at 16.
pub fn jdbc_partitions(lower: i64, upper: i64, n: usize) -> Result<Vec<RangePartition>> {
    if n == 0 {
        return Err(Error::invalid("numPartitions must be at least 1"));
    }
    if lower > upper {
        return Err(Error::invalid(format!(
            "lower bound {lower} is above upper bound {upper}"
        )));
    }
    // In i128: `upper - lower` and the running bound overflow i64 on extreme bounds.
    let span = i128::from(upper) - i128::from(lower);
    let n = if n <= 1 || span == 0 {
        1
    } else if span < n as i128 {
        span as usize
    } else {
        n
    };
    if n == 1 {
        return Ok(vec![RangePartition {
            index: 0,
            from: None,
            to: None,
        }]);
    }
    let ni = n as i128;
    let stride = i128::from(upper) / ni - i128::from(lower) / ni;
    // A bound past i64 cannot split anything: it is clamped (the partition beyond is empty).
    let bound = |b: i128| i64::try_from(b).unwrap_or(if b < 0 { i64::MIN } else { i64::MAX });
    let mut parts = Vec::with_capacity(n);
    let mut current = i128::from(lower);
    for i in 0..n {
        let from = if i == 0 { None } else { Some(bound(current)) };
        current += stride;
        let to = if i == n - 1 {
            None
        } else {
            Some(bound(current))
        };
        parts.push(RangePartition { index: i, from, to });
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stride_rule_matches_the_course_splits() {
        for (lo, hi, split) in [(1, 31, 16), (31, 61, 46), (61, 91, 76)] {
            let p = jdbc_partitions(lo, hi, 2).expect("parts");
            assert_eq!(p.len(), 2);
            assert_eq!(p[0].to, Some(split));
            assert_eq!(p[1].from, Some(split));
            assert_eq!(p[0].condition("ID"), format!("ID < {split} OR ID IS NULL"));
            assert_eq!(p[1].condition("ID"), format!("ID >= {split}"));
        }
    }

    #[test]
    fn stride_rule_handles_small_and_single_ranges() {
        assert_eq!(jdbc_partitions(5, 5, 2).expect("one").len(), 1);
        assert_eq!(jdbc_partitions(5, 6, 4).expect("one").len(), 1);
        let p = jdbc_partitions(0, 100, 4).expect("four");
        assert_eq!(
            p.iter().map(|r| (r.from, r.to)).collect::<Vec<_>>(),
            vec![
                (None, Some(25)),
                (Some(25), Some(50)),
                (Some(50), Some(75)),
                (Some(75), None)
            ]
        );
        assert!(jdbc_partitions(1, 0, 2).is_err());
        assert!(jdbc_partitions(1, 5, 0).is_err());
    }

    #[test]
    fn extreme_bounds_split_without_overflow() {
        for (lo, hi, n) in [
            (i64::MIN, i64::MAX, 4),
            (i64::MIN, i64::MAX, 2),
            (i64::MIN, 0, 3),
            (-1, i64::MAX, 7),
            (i64::MAX - 3, i64::MAX, 8),
        ] {
            let p = jdbc_partitions(lo, hi, n).expect("partitions");
            let splits: Vec<i64> = p.iter().filter_map(|r| r.to).collect();
            assert_eq!(p.len(), splits.len() + 1, "{lo} {hi} {n}");
            assert!(
                splits.windows(2).all(|w| w[0] <= w[1]),
                "{lo} {hi} {n}: bounds in order {splits:?}"
            );
            assert!(
                p.windows(2).all(|w| w[0].to == w[1].from),
                "{lo} {hi} {n}: ranges meet"
            );
        }
        assert_eq!(jdbc_partitions(i64::MIN, i64::MAX, 4).expect("4").len(), 4);
        assert_eq!(
            jdbc_partitions(i64::MAX - 3, i64::MAX, 8).expect("3").len(),
            3
        );
    }
}
