//! The batch pipeline against the real MariaDB, built from the same blocks as notebook 2's cells
//! (bounds, [`JdbcRead`], the Parquet write, `scan_hive` and the lazy aggregation): generator,
//! Spark's JDBC stride split with real rows, the Hive-style Parquet layout and its file schema,
//! rerun safety, and the aggregation against SQL. The chunked upload of `course::stock_data::upload` (used by
//! the benchmark at scale) is checked for the same rows and for stale folders.

mod batch_support;

use batch_support::{d, query_strings, settings, Sandbox};
use bde_kit::batch::jdbc::{bounds, JdbcRead, Partitioned};
use bde_kit::batch::layout::list_files;
use bde_kit::batch::parquet::{scan_hive, SaveMode};
use bde_kit::course::names::STOCK_PARTITIONS;
use bde_kit::course::stock::{self, WAREHOUSES};
use bde_kit::course::stock_data::aggregate;
use bde_kit::course::stock_data::upload::{upload, UploadSpec};
use bde_kit::polars::prelude::*;

const START: &str = "2025-04-01";
const END: &str = "2025-04-03";

/// Notebook 2's `upload_stock` cell on the test's databases and folder: bounds, the 2-way
/// partitioned read, the Parquet write replacing the folders it writes.
fn upload_like_the_notebook(job: &stock::StockJob, wh: &str) -> Option<((i64, i64), Partitioned)> {
    let s = settings();
    let (lo, hi) = bounds(
        &s,
        &job.local.db,
        "SELECT MIN(ID), MAX(ID) FROM item_stock WHERE STOCK_DATE BETWEEN ? AND ? AND WAREHOUSE_ID = ?",
        vec![START.into(), END.into(), wh.into()],
    )
    .expect("bounds")?;
    let stock = JdbcRead::query(
        &s,
        &job.local.db,
        "SELECT ID, DATE_FORMAT(STOCK_DATE, '%Y-%m-%d') AS STOCK_DATE, WAREHOUSE_ID, ITEM_NAME, \
         OPENING_STOCK, RECEIPTS, ISSUES, UNIT_VALUE FROM item_stock \
         WHERE STOCK_DATE BETWEEN ? AND ? AND WAREHOUSE_ID = ?",
    )
    .param(START)
    .param(END)
    .param(wh)
    .partition_column("ID")
    .lower_bound(lo)
    .upper_bound(hi + 1)
    .num_partitions(2)
    .load()
    .expect("read");
    stock
        .write()
        .mode(SaveMode::OverwritePartitions)
        .partition_by(&STOCK_PARTITIONS)
        .parquet(&job.data_dir)
        .expect("write");
    Some(((lo, hi), stock))
}

/// Notebook 2's aggregation cell: the lazy hive scan and the course's SQL as a lazy plan.
fn summary_like_the_notebook(job: &stock::StockJob) -> DataFrame {
    let (start, end) = (d(START), d(END));
    let global_stock = scan_hive(&job.data_dir, &STOCK_PARTITIONS).expect("scan");
    let closing = col("OPENING_STOCK") + col("RECEIPTS") - col("ISSUES");
    global_stock
        .filter(
            col("STOCK_DATE")
                .gt_eq(lit(start))
                .and(col("STOCK_DATE").lt_eq(lit(end))),
        )
        .group_by([col("STOCK_DATE"), col("ITEM_NAME")])
        .agg([
            len().alias("TOTAL_REC"),
            col("OPENING_STOCK").sum(),
            col("RECEIPTS").sum(),
            col("ISSUES").sum(),
            closing.clone().sum().alias("CLOSING_STOCK"),
            (closing * col("UNIT_VALUE"))
                .sum()
                .cast(DataType::Decimal(Some(10), Some(2)))
                .alias("CLOSING_VALUE"),
        ])
        .sort(["STOCK_DATE", "ITEM_NAME"], Default::default())
        .collect()
        .expect("aggregate")
}

fn generated(sb: &mut Sandbox, seed: u64) -> stock::StockJob {
    let job = sb.stock_job();
    let c =
        stock::generate_stock_with(&settings(), &job, d(START), d(END), seed).expect("generate");
    assert_eq!(c.inserted, 90);
    assert_eq!(
        c.counts,
        vec![
            ("London".to_string(), 30),
            ("LosAngeles".to_string(), 30),
            ("NewYork".to_string(), 30)
        ]
    );
    job
}

fn files_of(job: &stock::StockJob, date: &str, wh: &str) -> Vec<String> {
    let prefix = format!("STOCK_DATE={date}/WAREHOUSE_ID={wh}/");
    list_files(&job.data_dir)
        .expect("list")
        .into_iter()
        .filter_map(|f| f.strip_prefix(&prefix).map(|n| n[..10].to_string()))
        .collect()
}

#[test]
fn stride_rule_splits_real_rows_like_spark_and_gives_the_course_layout() {
    let mut sb = Sandbox::new("batch");
    let job = generated(&mut sb, 42);
    for (wh, lo, hi, split) in [
        ("NewYork", 1, 30, 16),
        ("LosAngeles", 31, 60, 46),
        ("London", 61, 90, 76),
    ] {
        let (b, up) = upload_like_the_notebook(&job, wh).expect("rows");
        assert_eq!(b, (lo, hi), "{wh}");
        assert_eq!(up.ranges.len(), 2);
        assert_eq!(up.ranges[0].to, Some(split));
        assert_eq!(up.ranges[1].from, Some(split));
        assert_eq!(up.rows_per_partition(), vec![15, 15], "{wh}");
        assert_eq!(up.height(), 30);
        assert!(up.show(3).to_text().contains("only showing top 3 rows"));
        assert_eq!(
            up.frame()
                .expect("frame")
                .column("ID")
                .expect("ID")
                .i32()
                .expect("i32")
                .get(0),
            Some(lo as i32)
        );
        // The course's layout: day 1 only part-00000, day 2 both, day 3 only part-00001.
        assert_eq!(files_of(&job, "2025-04-01", wh), vec!["part-00000"]);
        assert_eq!(
            files_of(&job, "2025-04-02", wh),
            vec!["part-00000", "part-00001"]
        );
        assert_eq!(files_of(&job, "2025-04-03", wh), vec!["part-00001"]);
    }
    let all = list_files(&job.data_dir).expect("list");
    assert_eq!(all.len(), 12, "{all:#?}");
    assert!(
        all.iter().all(|f| f.ends_with(".c000.snappy.parquet")),
        "{all:#?}"
    );
    assert!(
        !job.data_dir.join("_temporary").exists(),
        "staging folder left behind"
    );

    // Inside a file: the data columns with Spark's JDBC types, no partition columns.
    let one = job.data_dir.join(&all[0]);
    let df = LazyFrame::scan_parquet(
        one.to_str().expect("utf8"),
        ScanArgsParquet {
            hive_options: bde_kit::polars::io::HiveOptions {
                enabled: Some(false),
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .expect("scan")
    .collect()
    .expect("read");
    let schema: Vec<(String, DataType)> = df
        .schema()
        .iter()
        .map(|(n, t)| (n.to_string(), t.clone()))
        .collect();
    assert_eq!(
        schema,
        vec![
            ("ID".into(), DataType::Int32),
            ("ITEM_NAME".into(), DataType::String),
            ("OPENING_STOCK".into(), DataType::Int32),
            ("RECEIPTS".into(), DataType::Int32),
            ("ISSUES".into(), DataType::Int32),
            ("UNIT_VALUE".into(), DataType::Decimal(Some(10), Some(2))),
        ]
    );
}

#[test]
fn small_chunks_and_more_partitions_give_the_same_rows() {
    let mut sb = Sandbox::new("batch");
    let job = generated(&mut sb, 7);
    let mut spec = UploadSpec::new(job.local.clone(), "LosAngeles", d(START), d(END));
    spec.chunk_ids = 4;
    spec.partitions = 3;
    let up = upload(&settings(), &job.data_dir, &spec).expect("upload");
    assert_eq!(up.rows, 30);
    assert_eq!(up.ranges.len(), 3);
    assert_eq!(up.rows_per_partition.iter().sum::<u64>(), 30);
    let lf = aggregate::scan_store(&job.data_dir).expect("scan");
    let df = lf
        .sort(["ID"], Default::default())
        .collect()
        .expect("collect");
    assert_eq!(df.height(), 30);
    let ids: Vec<i32> = df
        .column("ID")
        .expect("ID")
        .i32()
        .expect("i32")
        .into_no_null_iter()
        .collect();
    assert_eq!(ids, (31..=60).collect::<Vec<_>>());
    assert_eq!(
        df.column("WAREHOUSE_ID")
            .expect("w")
            .str()
            .expect("str")
            .get(0),
        Some("LosAngeles")
    );
    assert_eq!(df.column("STOCK_DATE").expect("d").dtype(), &DataType::Date);
}

fn sql_group_by(job: &stock::StockJob) -> Vec<Vec<String>> {
    query_strings(
        &job.local,
        "SELECT DATE_FORMAT(STOCK_DATE, '%Y-%m-%d'), ITEM_NAME, COUNT(*), SUM(OPENING_STOCK), SUM(RECEIPTS), SUM(ISSUES), \
         SUM(OPENING_STOCK + RECEIPTS - ISSUES), CAST(SUM((OPENING_STOCK + RECEIPTS - ISSUES) * UNIT_VALUE) AS CHAR) \
         FROM {t} GROUP BY 1, 2 ORDER BY 1, 2",
    )
}

fn global_rows(job: &stock::StockJob) -> Vec<Vec<String>> {
    query_strings(
        &job.global,
        "SELECT DATE_FORMAT(STOCK_DATE, '%Y-%m-%d'), ITEM_NAME, TOTAL_REC, OPENING_STOCK, RECEIPTS, ISSUES, CLOSING_STOCK, \
         CAST(CLOSING_VALUE AS CHAR) FROM {t} ORDER BY 1, 2",
    )
}

fn frame_rows(df: &DataFrame) -> Vec<Vec<String>> {
    let cents = aggregate::decimal_cents(df, "CLOSING_VALUE").expect("cents");
    (0..df.height())
        .map(|i| {
            let mut r: Vec<String> = [
                "STOCK_DATE",
                "ITEM_NAME",
                "TOTAL_REC",
                "OPENING_STOCK",
                "RECEIPTS",
                "ISSUES",
                "CLOSING_STOCK",
            ]
            .iter()
            .map(|c| {
                let v = df.column(c).expect("col").get(i).expect("value");
                v.get_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            })
            .collect();
            r.push(bde_kit::batch::cents_to_string(cents[i].expect("value")));
            r
        })
        .collect()
}

#[test]
fn aggregation_matches_sql_and_reruns_replace_instead_of_adding() {
    let mut sb = Sandbox::new("batch");
    let job = generated(&mut sb, 2024);
    let s = settings();
    for wh in WAREHOUSES {
        upload_like_the_notebook(&job, wh).expect("rows");
    }
    let summary = summary_like_the_notebook(&job);
    assert_eq!(summary.height(), 30);
    assert_eq!(
        summary.column("CLOSING_VALUE").expect("column").dtype(),
        &DataType::Decimal(Some(10), Some(2)),
        "the global table's DECIMAL(10,2)"
    );
    assert_eq!(
        aggregate::write_global(&s, &job.global, &summary).expect("write"),
        30
    );
    assert_eq!(stock::check_total_rec(&summary).expect("TOTAL_REC"), (3, 3));
    let expected = sql_group_by(&job);
    assert_eq!(expected.len(), 30);
    assert!(expected.iter().all(|r| r[2] == "3"));
    assert_eq!(
        frame_rows(&summary),
        expected,
        "Polars summary vs SQL GROUP BY"
    );
    assert_eq!(global_rows(&job), expected, "global table vs SQL GROUP BY");
    let files_before = list_files(&job.data_dir).expect("list").len();

    // Upload everything again (twice for one warehouse) and aggregate again: nothing doubles.
    for wh in WAREHOUSES {
        upload_like_the_notebook(&job, wh).expect("rows again");
    }
    upload_like_the_notebook(&job, "London").expect("third upload");
    assert_eq!(list_files(&job.data_dir).expect("list").len(), files_before);
    let again = summary_like_the_notebook(&job);
    assert_eq!(frame_rows(&again), expected);
    aggregate::write_global(&s, &job.global, &again).expect("write again");
    assert_eq!(global_rows(&job), expected, "global table after rerun");

    // The course's verification cell: the two queries, then the comparison.
    let local = JdbcRead::query(&s, &job.local.db, "SELECT WAREHOUSE_ID, OPENING_STOCK, RECEIPTS, ISSUES FROM item_stock WHERE ITEM_NAME = ? AND DATE(STOCK_DATE) = ? ORDER BY ID")
        .param(stock::CHECK_ITEM).param(START).load().expect("local").frame().expect("frame");
    let global = JdbcRead::query(&s, &job.global.db, "SELECT OPENING_STOCK, RECEIPTS, ISSUES FROM item_stock WHERE ITEM_NAME = ? AND DATE(STOCK_DATE) = ?")
        .param(stock::CHECK_ITEM).param(START).load().expect("global").frame().expect("frame");
    let v = stock::compare_local_and_global(stock::CHECK_ITEM, d(START), &local, &global)
        .expect("verify");
    assert_eq!(v.local.len(), 3);
    assert!(v.equal());
    assert_eq!(
        stock::verify_global_with(&s, &job, stock::CHECK_ITEM, d(START))
            .expect("verify")
            .global,
        v.global
    );
}

#[test]
fn append_mode_adds_part_files_and_overwrite_replaces_them() {
    let mut sb = Sandbox::new("batch");
    let job = generated(&mut sb, 11);
    let (_, up) = upload_like_the_notebook(&job, "NewYork").expect("rows");
    assert_eq!(list_files(&job.data_dir).expect("list").len(), 4);
    up.write()
        .mode(SaveMode::Append)
        .partition_by(&STOCK_PARTITIONS)
        .parquet(&job.data_dir)
        .expect("append");
    assert_eq!(
        list_files(&job.data_dir).expect("list").len(),
        8,
        "append keeps the old part files (Spark's append)"
    );
    let rows = scan_hive(&job.data_dir, &STOCK_PARTITIONS)
        .expect("scan")
        .collect()
        .expect("collect")
        .height();
    assert_eq!(
        rows, 60,
        "append duplicates the rows, as the course's rerun does"
    );
    up.write()
        .mode(SaveMode::OverwritePartitions)
        .partition_by(&STOCK_PARTITIONS)
        .parquet(&job.data_dir)
        .expect("overwrite");
    assert_eq!(list_files(&job.data_dir).expect("list").len(), 4);
    let rows = scan_hive(&job.data_dir, &STOCK_PARTITIONS)
        .expect("scan")
        .collect()
        .expect("collect")
        .height();
    assert_eq!(rows, 30);
    assert!(
        !job.data_dir.join("_temporary").exists(),
        "staging folder left behind"
    );
}

#[test]
fn an_emptied_source_removes_stale_folders_on_reupload() {
    let mut sb = Sandbox::new("batch");
    let job = generated(&mut sb, 3);
    let s = settings();
    let spec = |from: &str, to: &str| UploadSpec::new(job.local.clone(), "NewYork", d(from), d(to));
    upload(&s, &job.data_dir, &spec(START, END)).expect("upload");
    assert_eq!(list_files(&job.data_dir).expect("list").len(), 4);
    let mut c = bde_kit::batch::worker_conn(&s.mariadb).expect("conn");
    use bde_kit::mysql::prelude::Queryable;
    c.exec_drop(
        format!(
            "DELETE FROM {} WHERE WAREHOUSE_ID = ? AND STOCK_DATE >= ?",
            job.local.sql().expect("sql")
        ),
        ("NewYork", "2025-04-03"),
    )
    .expect("delete");
    let up = upload(&s, &job.data_dir, &spec(START, END)).expect("upload");
    assert_eq!(up.rows, 20);
    assert!(files_of(&job, "2025-04-03", "NewYork").is_empty());
    // Bounds are now 1..20: the split moves to 11, so day 2 lies wholly in the second range.
    assert_eq!(up.ranges[0].to, Some(11));
    assert_eq!(files_of(&job, "2025-04-01", "NewYork"), vec!["part-00000"]);
    assert_eq!(files_of(&job, "2025-04-02", "NewYork"), vec!["part-00001"]);
    let empty =
        upload(&s, &job.data_dir, &spec("2025-05-01", "2025-05-02")).expect("nothing to upload");
    assert_eq!(empty.bounds, None);
    assert_eq!(empty.rows, 0);
}
