"""What each course notebook must show when replayed headless (used by kernel/run_notebooks.py).

patterns: regular expressions that must match the notebook's combined text output
mimes:    output MIME types that must appear (rich HTML tables, SVG charts)
checks:   functions(text) -> None when fine, or a message saying what is wrong
"""

NB1 = "code_00_03_Spark_BDE_Setup_Prerequisites.ipynb"
NB2 = "code_03_XX_Spark_BDE_Batch_Data_Engg.ipynb"
NB3 = "code_04_03_Spark_BDE_Generate a visits stream.ipynb"
NB4 = "code_04_04_Spark_BDE_Build_a_streaming_analytics_job.ipynb"
NB5 = "code_04_05_Spark_BDE_Execute_the_pipeline.ipynb"
NB6 = "code_06_03_Spark_BDE_Extracting_long_last_actions.ipynb"
NB7 = "code_06_04_Spark_BDE_scorecard_for_last_action.ipynb"

# health() renders one row per service; all three must be up.
HEALTH_UP = [r"<td>Kafka</td><td>[^<]*</td><td><b[^>]*>up</b>",
             r"<td>Redis</td><td>[^<]*</td><td><b[^>]*>up</b>",
             r"<td>MariaDB</td><td>[^<]*</td><td><b[^>]*>up</b>"]

EXPECTATIONS = {
    NB1: {"patterns": HEALTH_UP + [r"<td>Pencil Box</td>"], "mimes": ["text/html", "image/svg+xml"]},
    NB2: {"patterns": HEALTH_UP, "mimes": ["text/html"]},
    NB3: {"patterns": HEALTH_UP, "mimes": ["text/html"]},
    NB4: {"patterns": HEALTH_UP, "mimes": ["text/html"]},
    NB5: {"patterns": HEALTH_UP, "mimes": ["text/html"]},
    NB6: {"patterns": HEALTH_UP, "mimes": ["text/html"]},
    NB7: {"patterns": HEALTH_UP, "mimes": ["text/html"]},
}

# Notebooks in a group run at the same time, each in its own kernel; groups run in this order.
RUN_ORDER = [[NB1], [NB2], [NB3], [NB4], [NB5], [NB6], [NB7]]
# Start delays (seconds) per notebook of a concurrent group.
GROUP_DELAYS = {}
# Checks run after a whole group finished: functions() -> None or a message.
GROUP_CHECKS = {}
