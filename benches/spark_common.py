"""The course's Spark session (SPEC §1.3): local[2], two shuffle partitions, parallelism 2, the
course's other settings; quiet logs. Shared by the PySpark benchmark scripts."""

import os
import time


def course_session(app):
    """Returns (spark, seconds it took to start the session)."""
    os.environ["PYSPARK_PYTHON"] = __import__("sys").executable  # the venv, with redis and PyMySQL
    t0 = time.time()
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[2]")
        .appName(app)
        .config("spark.sql.shuffle.partitions", 2)
        .config("spark.default.parallelism", 2)
        .config("spark.sql.streaming.forceDeleteTempCheckpointLocation", True)
        .config("spark.hadoop.mapreduce.fileoutputcommitter.algorithm.version", 2)
        .config("spark.ui.showConsoleProgress", False)
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark, time.time() - t0
