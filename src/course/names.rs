//! The course's names, each defined once: Kafka topics, Redis keys, MariaDB databases and
//! tables, the partition columns of the file store, and the names of the course's queries.
//! Every notebook cell and every `course` module takes its names from here.

/// Chapter 4's input: one JSON value per website visit, key = country.
pub const VISITS_TOPIC: &str = "spark.streaming.website.visits";
/// Chapter 4's output: ShoppingCart visits as CSV lines, no key.
pub const CARTS_TOPIC: &str = "spark.streaming.carts.abandoned";
/// Chapter 6: the long last actions, key = value = the action.
pub const LONG_TOPIC: &str = "spark.exercise.lastaction.long";
/// The course's three topics (created with 1 partition and replication factor 1).
pub const TOPICS: [&str; 3] = [VISITS_TOPIC, CARTS_TOPIC, LONG_TOPIC];

/// Redis sorted set of total duration per **country** (the course's name says "action").
pub const COUNTRY_KEY: &str = "last-action-stats";
/// Redis sorted set of long last actions per action (chapter 6's scorecard).
pub const SCORE_KEY: &str = "long-last-action-stats";

/// The warehouses' local database.
pub const WAREHOUSE_DB: &str = "warehouse_stock";
/// The central database of consolidated stock.
pub const GLOBAL_DB: &str = "global_stock";
/// The database of the 5-second visit summaries.
pub const STATS_DB: &str = "website_stats";
/// The stock table (`warehouse_stock.item_stock` and `global_stock.item_stock`).
pub const STOCK_TABLE: &str = "item_stock";
/// The 5-second summaries (`website_stats.visit_stats`).
pub const VISIT_STATS_TABLE: &str = "visit_stats";
/// The IDs of `visit_stats` rows published to [`LONG_TOPIC`] (chapter 6; not in the course).
pub const LEDGER_TABLE: &str = "published_long_actions";

/// The Parquet store's partition columns, outermost first (`raw_data/STOCK_DATE=…/WAREHOUSE_ID=…`).
pub const STOCK_PARTITIONS: [&str; 2] = ["STOCK_DATE", "WAREHOUSE_ID"];

/// Notebook 4's streaming job (its checkpoint folder under `Settings.checkpoint_dir`).
pub const ANALYTICS_JOB: &str = "website-analytics";
/// Notebook 7's scorecard query.
pub const SCORECARD_QUERY: &str = "long-last-action-scorecard";

/// The last action whose visits are abandoned carts.
pub const SHOPPING_CART: &str = "ShoppingCart";
