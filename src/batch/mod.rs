//! Batch data engineering with Polars: the stock generator, partitioned parallel reads from
//! MariaDB into Hive-style Parquet, and the global aggregation (chapter 3 of the course).
