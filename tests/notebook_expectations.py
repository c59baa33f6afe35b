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
NB99 = "code_99_Explore_the_state.ipynb"

# health() renders one row per service; all three must be up.
HEALTH_UP = [r"<td>Kafka</td><td>[^<]*</td><td><b[^>]*>up</b>",
             r"<td>Redis</td><td>[^<]*</td><td><b[^>]*>up</b>",
             r"<td>MariaDB</td><td>[^<]*</td><td><b[^>]*>up</b>"]

VISIT = r'^\{"country": "(USA|India|Brazil|Australia|Russia)", "last_action": "(Catalog|FAQ|Order|ShoppingCart)", ' \
        r'"visit_date": "\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", "duration": ([1-9]|1\d|20)\}$'


def visits_printed(text, n):
    import re
    got = len(re.findall(VISIT, text, re.MULTILINE))
    return None if got == n else f"expected {n} printed visits in the course's JSON form, found {got}"


def parquet_layout(text):
    """The course's layout on a fresh table: day 1 only part-00000, day 2 both, day 3 only part-00001."""
    import re
    files = re.findall(r"STOCK_DATE=(\d{4}-\d\d-\d\d)/WAREHOUSE_ID=(\w+)/part-(\d{5})-[^<\s]*\.parquet", text)
    if not files:
        return "no Parquet part files listed"
    days = sorted({d for d, _, _ in files})
    if len(days) != 3:
        return f"expected 3 dates in raw_data, got {days}"
    want = {days[0]: {"00000"}, days[1]: {"00000", "00001"}, days[2]: {"00001"}}
    for w in ("NewYork", "LosAngeles", "London"):
        for d in days:
            got = {p for dd, ww, p in files if dd == d and ww == w}
            if got != want[d]:
                return f"{w} {d}: parts {sorted(got)}, expected {sorted(want[d])}"
    return None


def published(text, first):
    """The published count equals the rows > 15 in range (first run), or nothing new (second run)."""
    import re
    m = re.search(r"Published (\d+) rows to spark\.exercise\.lastaction\.long \((\d+) rows with DURATION > 15 "
                  r"in the range; (\d+) published before\)", text)
    if not m:
        return "no 'Published N rows …' line"
    pub, selected, before = map(int, m.groups())
    if pub + before != selected:
        return f"published {pub} + before {before} != selected {selected}"
    if first and pub == 0:
        return "the first run after the chapter-4 replay published nothing"
    if not first and pub != 0:
        return f"the second run published {pub} rows again"
    return None


EXPECTATIONS = {
    NB1: {"patterns": HEALTH_UP + [r"<td>Pencil Box</td>", r"Databases available : \[",
                                   r"Schema and Tables:\n-+\n", r"global_stock  :  item_stock", r"warehouse_stock  :  item_stock",
                                   r"website_stats  :  visit_stats", r"Topics available now :\n-+\n",
                                   r"^spark\.streaming\.website\.visits$", r"^spark\.streaming\.carts\.abandoned$",
                                   r"^spark\.exercise\.lastaction\.long$", r"<h4>Setup report</h4>", r"<td>rustc</td><td>rustc 1\."],
          "mimes": ["text/html", "image/svg+xml"]},
    NB2: {"patterns": HEALTH_UP + [r"<h4>From PySpark to the kit</h4>", r"Records created:\n-+\nLondon 30\nLosAngeles 30\nNewYork 30",
                                   r"90 rows inserted; warehouse_stock\.item_stock now holds 90 rows",
                                   r"Query bounds are :  1 30", r"Query bounds are :  31 60", r"Query bounds are :  61 90",
                                   r"only showing top 3 rows", r"raw_data \(12 files\)", r"Global Stock Summary",
                                   r"30 rows written to global_stock\.item_stock", r"TOTAL_REC = 3 for all 30 rows",
                                   r"Local sums (\d+) (\d+) (\d+) = global \1 \2 \3: equal",
                                   r"wrote 30 rows in 4 part files under \S*raw_data \(mode OverwritePartitions\)"],
          "mimes": ["text/html", "image/svg+xml"], "checks": [lambda t: parquet_layout(t)]},
    NB3: {"patterns": HEALTH_UP + [r"the analytics job is running", r"99 visits sent to spark\.streaming\.website\.visits",
                                   r"Total messages : \d+"],
          "mimes": ["text/html"], "checks": [lambda t: visits_printed(t, 99)]},
    NB4: {"patterns": HEALTH_UP + [r"\*+Starting Streaming Analytics for Website visits\*+", r"Reading from Kafka\.\.\.",
                                   r"batch +\d+ +rows +[1-9]", r"Query website-analytics — stopped", r"<svg",
                                   r"replay check: all equal"],
          "mimes": ["text/html"]},
    NB5: {"patterns": HEALTH_UP + [r"Shopping Cart from Kafka", r"Country Stats from Redis\n-+\n(\w+  =  \d+\.\d\n)+",
                                   r"Last Action stats from mariaDB\n-+\n(\w+  =  \d+\n)+",
                                   r"^\w+,ShoppingCart,\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+$",
                                   r"Pipeline monitor: \d+ refreshes, [1-9]\d* cart lines", r"<svg",
                                   r"<th>INTERVAL_TIMESTAMP</th>", r"<th>member</th><th>score</th>",
                                   r"<th>INTERVAL_TIMESTAMP</th>[^\n]*<td class=\"dtype\">", r"class=\"bde-snapshot\""],
          "mimes": ["text/html"]},
    NB6: {"patterns": HEALTH_UP + [r"Querying bounds for date ranges : \d{4}-\d\d-\d\d \d{4}-\d\d-\d\d",
                                   r"Query bounds are :  \d+ \d+", r"<th>ID</th><th>LAST_ACTION</th><th>DURATION</th>"],
          "mimes": ["text/html"], "checks": [lambda t: published(t, first=True)]},
    NB7: {"patterns": HEALTH_UP + [r"Reading from Kafka\.\.\.", r"Long Last Action Stats from Redis\n-+\n(\w+  =  \d+\.0\n)+",
                                   r"Query long-last-action-scorecard — stopped", r"scorecard check: all equal"],
          "mimes": ["text/html"]},
}


def explore_lag(text):
    """Notebook 99: the analytics job's checkpoint row adds up (checkpoint + behind = end) and it read at
    least the 99 visits of this replay's generator (visits sent later by another run may stay behind)."""
    import re
    rows = re.findall(r"<td>website-analytics</td><td>spark\.streaming\.website\.visits</td><td>\d+</td>"
                      r"<td>(\d+)</td><td>(\d+)</td><td>(-?\d+)</td>", text)
    if not rows:
        return "lag(): no row for website-analytics on spark.streaming.website.visits"
    for at, end, behind in ((int(a), int(e), int(b)) for a, e, b in rows):
        if at + behind != end or behind < 0:
            return f"lag(): checkpoint {at} + behind {behind} != end {end}"
        if at < 99:
            return f"lag(): the analytics job's checkpoint is at {at}, below the 99 visits it read"
    return None


# Notebook 99 browses what the course left: tables with their counts (not pinned: other replays on a
# shared machine write the same tables), the refused write, topics,
# lag, Redis keys by namespace, the chart from a query.
EXPECTATIONS[NB99] = {
    "patterns": HEALTH_UP + [r"<td>global_stock</td><td>item_stock</td><td>InnoDB</td><td>[1-9]\d*</td>",
                             r"<td>warehouse_stock</td><td>item_stock</td><td>InnoDB</td><td>[1-9]\d*</td>",
                             r"<td>CLOSING_VALUE</td><td>decimal\(10,2\)</td>",
                             r"<td>Pencil Box</td><td>3</td>",
                             r"refused: MariaDB at \S+ failed to run `DELETE FROM item_stock` read-only: .*sql_write",
                             r"<td>spark\.streaming\.website\.visits</td><td>1</td>",
                             r"newest 5 records, newest first",
                             r"<td>long-last-action-scorecard</td><td>spark\.exercise\.lastaction\.long</td>",
                             r"<td>last-action-stats</td><td>zset</td>",
                             r"total of the scores: \d+",
                             r"Redis total \d+, MariaDB total \d+",
                             r"<td>website_stats</td><td>published_long_actions</td>",
                             r"oldest 5 records, oldest first", r"<svg"],
    "mimes": ["text/html"], "checks": [explore_lag]}
# Chapter 6 runs twice: the second run must publish nothing new and count nothing twice.
EXPECTATIONS["second run"] = {**EXPECTATIONS[NB6], "checks": [lambda t: published(t, first=False)]}
EXPECTATIONS["second scorecard"] = EXPECTATIONS[NB7]

# Notebooks in a group run at the same time, each in its own kernel; groups run in this order.
# Chapter 4 runs as the course's demo does: monitor, job and generator at once (the generator
# waits for the job, the job runs until the visits stop, then checks itself against the generator).
RUN_ORDER = [[NB1], [NB2], [NB5, NB4, NB3], [NB6], [NB7], [(NB6, "second run")], [(NB7, "second scorecard")], [NB99]]
# Start delays (seconds) per notebook of a concurrent group.
GROUP_DELAYS = {}
# Order inside a concurrent group, independent of how long each kernel's `:dep` takes: a cell of
# one notebook (matched by a piece of its source) starts only once a cell of another has started.
# The monitor (notebook 5) must be watching before the generator (notebook 3) sends its visits:
# its carts consumer starts at the topic's end in the cell before the monitor loop, so once the
# loop's cell has started, every cart line of this run reaches it. Each piece must match exactly
# one code cell of its notebook (the runner refuses to start the group otherwise).
GROUP_GATES = {
    (NB3, "VisitGenerator::course(&settings)"): (NB5, "Monitor::course(&settings).run_with("),
}
GATE_TIMEOUT = 900
# Checks run after a whole group finished: functions() -> None or a message.
GROUP_CHECKS = {}
