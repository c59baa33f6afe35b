//! [`pyspark_help`]: the course's PySpark calls beside the kit's, as one table in a cell (the
//! rows are the course's; [`crate::show::Table`] renders them).
//!
//! The same rows are in the README ("From PySpark to the kit"); a unit test keeps the two equal.

use crate::show::Table;

/// (what the course writes in PySpark, what a cell writes with the kit, where it is used).
pub const PYSPARK_TO_KIT: &[(&str, &str, &str)] = &[
    (
        "SparkSession.builder…getOrCreate()",
        "`:dep bde_kit = { path = \"..\" }` + `use bde_kit::prelude::*;` + `let settings = Settings::from_env();` (every call that reaches a server or a folder takes `&settings`)",
        "every notebook's first cell",
    ),
    (
        "spark.read.jdbc / .format(\"jdbc\").option(\"partitionColumn\", …)",
        "`JdbcRead::query(&settings, DB, sql).partition_column(\"ID\").lower_bound(lo).upper_bound(hi).num_partitions(2).load()?`",
        "notebooks 2, 6",
    ),
    (
        "SELECT MIN(ID), MAX(ID) … (bounds for the read)",
        "`bounds(&settings, DB, sql, params)?`",
        "notebooks 2, 6",
    ),
    (
        "df.show(n)",
        "`stock.show(n)` / `Table::new(&df).rows(n)`; a frame as a cell's last value renders as a table",
        "every notebook",
    ),
    (
        "df.write.mode(\"append\").partitionBy(…).parquet(path)",
        "`stock.write().mode(SaveMode::OverwritePartitions).partition_by(&[…]).parquet(dir)?`",
        "notebook 2",
    ),
    (
        "spark.read.parquet(path) + createOrReplaceTempView + spark.sql(…GROUP BY…)",
        "`scan_hive(dir, &STOCK_PARTITIONS)?.filter(…).group_by([…]).agg([…]).collect()?`",
        "notebook 2",
    ),
    (
        "df.write.jdbc(url, table, mode=\"append\")",
        "`JdbcWrite::to(&settings, TableRef::new(DB, TABLE)?).replace_matching(\"STOCK_DATE\").save(&df)?`",
        "notebook 2",
    ),
    (
        "KafkaProducer(…).send(topic, key, value)",
        "`course::visits::VisitGenerator::course(&settings).body(…).start()?` (a handle: progress, wait, stop)",
        "notebook 3",
    ),
    (
        "spark.readStream.format(\"kafka\").option(\"subscribe\", t).option(\"startingOffsets\", \"latest\")",
        "`Stream::<Visit>::read(KafkaSource::new(TOPIC).starting(Start::Latest))`",
        "notebooks 4, 7",
    ),
    (
        "from_json(col(\"value\"), schema)",
        "a `struct` with `serde::Deserialize` and `impl Row` (`decode_json(value)`)",
        "notebook 4",
    ),
    (
        ".filter(col(\"last_action\") == \"ShoppingCart\")",
        "`visits.filter(|v| v.last_action == SHOPPING_CART)`",
        "notebook 4",
    ),
    (
        ".writeStream.format(\"kafka\").option(\"topic\", t)",
        "`.write(KafkaSink::new(TOPIC, |v| format!(…)))` (exactly-once for one writer)",
        "notebook 4",
    ),
    (
        ".writeStream.foreach(redis_writer) (ZINCRBY per row)",
        "`visits.write(RedisZIncr::new(KEY, |v| member, |v| amount))` (one atomic script per batch)",
        "notebooks 4, 7",
    ),
    (
        ".withWatermark(\"timestamp\", \"5 seconds\").groupBy(window(…, \"5 seconds\"), …).agg(sum(…))",
        "`visits.with_watermark(5 s).window(Window::tumbling(5 s), |v| key).agg([agg::sum(…)])`",
        "notebook 4",
    ),
    (
        ".writeStream.foreachBatch(mariadb_writer)",
        "`.write(MariaDbInsert::new(DB, TABLE, &[cols], |w| values).merge(Merge::Additive{…}))`",
        "notebook 4",
    ),
    (
        ".trigger(processingTime=\"1 second\").start()",
        "`Query::new(NAME).settings(settings.clone()).trigger(Trigger::every(1 s)).start([carts, totals, summaries])?`",
        "notebooks 4, 7",
    ),
    (
        "query.awaitTermination()",
        "`course::analytics::run_until_visits_stop(&job, idle, max)?` (bounded; ■ stops the wait, not the job)",
        "notebook 4",
    ),
    (
        "query.lastProgress / query.status",
        "`job.status()`, `query_dashboard(&job)?` (live page)",
        "notebooks 4, 5",
    ),
    (
        "query.stop()",
        "`job.stop()?` (final flush, returns a summary)",
        "notebooks 4, 7",
    ),
    (
        "while True: … time.sleep(5) (monitor loop, stopped with KeyboardInterrupt)",
        "`course::monitor::Monitor::course(&settings).run_with(…)?` (bounded; ■ ends it with what it has)",
        "notebook 5",
    ),
    (
        "df.write.format(\"kafka\").save() (batch publish)",
        "`KafkaPublish::to(&settings, TOPIC).key(…).value(…).once_per(\"ID\", DB, LEDGER).publish(&df)?`",
        "notebook 6",
    ),
];

/// The table of [`PYSPARK_TO_KIT`] for a cell: `pyspark_help()` as a cell's last value.
pub fn pyspark_help() -> Table {
    let rows = PYSPARK_TO_KIT
        .iter()
        .map(|(spark, kit, used)| vec![spark.to_string(), kit.replace('`', ""), used.to_string()])
        .collect();
    Table::from_rows(
        &[
            "PySpark (the course)",
            "bde_kit (these notebooks)",
            "used in",
        ],
        rows,
    )
    .title("From PySpark to the kit")
    .rows(PYSPARK_TO_KIT.len())
}

/// The same rows as a Markdown table (the README's section is this text).
pub fn pyspark_help_markdown() -> String {
    let mut out = String::from(
        "| PySpark (the course) | bde_kit (these notebooks) | used in |\n|---|---|---|\n",
    );
    for (spark, kit, used) in PYSPARK_TO_KIT {
        let spark = if spark.starts_with('`') {
            spark.to_string()
        } else {
            format!("`{spark}`")
        };
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            spark.replace('|', "\\|"),
            kit.replace('|', "\\|"),
            used
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_shows_the_same_table() {
        let readme = include_str!("../../README.md");
        let table = pyspark_help_markdown();
        assert!(
            readme.contains(&table),
            "README.md's 'From PySpark to the kit' section differs; put this there:\n{table}"
        );
    }

    #[test]
    fn the_cell_table_has_every_row() {
        let t = pyspark_help();
        assert_eq!(t.total_rows(), PYSPARK_TO_KIT.len());
        let h = t.to_html();
        assert!(
            h.contains("KafkaSource::new(TOPIC)") && h.contains("awaitTermination"),
            "{h}"
        );
        assert!(!h.contains("only showing"), "every row is shown");
    }
}
