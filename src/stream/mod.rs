//! The micro-batch streaming engine (chapters 4 and 6): Kafka sources, triggers, windows with
//! watermarks, exactly-once sinks, checkpoints and query handles for notebooks.
