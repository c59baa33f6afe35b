//! The Redis sink applies a batch's increments and its applied-batch marker together or not at
//! all: a key of another type (WRONGTYPE) or a NaN amount fails the batch with nothing changed
//! and no marker set, and after the key is fixed the same batch applies in full.

#[path = "stream_util/mod.rs"]
mod stream_util;

use bde_kit::course::visit::Visit;
use bde_kit::io::redis as rio;
use bde_kit::redis::Commands;
use bde_kit::stream::sink::{BatchInfo, RedisZIncr, Sink};
use stream_util::*;

fn info(f: &Fixture, batch_id: u64, replay: bool) -> BatchInfo {
    BatchInfo {
        query: "q".into(),
        batch_id,
        batch_time_ms: 0,
        replay,
        flush: false,
        settings: f.settings.clone(),
    }
}

fn marker(f: &Fixture, key: &str, sink: &RedisZIncr<Visit>) -> Option<i64> {
    let m = RedisZIncr::<Visit>::marker_key(key, "q", &Sink::<Visit>::name(sink));
    let mut con = rio::connect(&f.settings).expect("redis");
    con.get(m).expect("GET marker")
}

#[test]
fn a_key_of_another_type_fails_loudly_sets_no_marker_and_the_batch_applies_once_fixed() {
    let mut f = Fixture::new("rwrong");
    let key = f.key("countries");
    let mut con = rio::connect(&f.settings).expect("redis");
    let _: () = con.rpush(&key, "someone else's list").expect("RPUSH");
    let vs = visits(40);
    let mut z = RedisZIncr::new(
        &key,
        |v: &Visit| v.country.clone(),
        |v: &Visit| v.duration as f64,
    );
    z.open("q", &f.settings).expect("open");
    assert!(
        z.check(&info(&f, 0, false), &vs).is_empty(),
        "a wrong key type is not a row problem"
    );
    let e = z
        .apply(&info(&f, 0, false), &vs, &serde_json::Value::Null)
        .expect_err("WRONGTYPE must fail the batch");
    assert_eq!(
        marker(&f, &key, &z),
        None,
        "the batch is not marked applied"
    );
    let msg = e.to_string();
    assert!(
        msg.contains(&key) && msg.contains("list") && msg.contains("DEL"),
        "the error names the key, its type and the fix: {msg}"
    );
    let list: Vec<String> = con.lrange(&key, 0, -1).expect("LRANGE");
    assert_eq!(
        list,
        vec!["someone else's list".to_string()],
        "the foreign key is untouched"
    );
    // the user fixes the key; the rerun (a replay of the same batch) applies it in full, once
    let _: () = con.del(&key).expect("DEL");
    assert!(
        z.apply(&info(&f, 0, true), &vs, &serde_json::Value::Null)
            .expect("rerun")
            > 0
    );
    assert_eq!(
        z.apply(&info(&f, 0, true), &vs, &serde_json::Value::Null)
            .expect("again"),
        0,
        "applied once"
    );
    assert_eq!(
        redis_scores(&f.settings, &key),
        sum_by(&vs, |v| v.country.clone())
    );
    assert_eq!(marker(&f, &key, &z), Some(0));
}

#[test]
fn a_nan_amount_is_a_dead_letter_row_and_never_half_applies_a_batch() {
    let mut f = Fixture::new("rnan");
    let key = f.key("countries");
    let mut vs = visits(30);
    vs[7].country = "Nowhere".into();
    vs[19].country = "Nowhere".into();
    let amount = |v: &Visit| {
        if v.country == "Nowhere" {
            f64::NAN
        } else {
            v.duration as f64
        }
    };
    let mut z = RedisZIncr::new(&key, |v: &Visit| v.country.clone(), amount);
    z.open("q", &f.settings).expect("open");
    // applied anyway (a caller that skips check): nothing changes, no marker
    z.apply(&info(&f, 0, false), &vs[..3], &serde_json::Value::Null)
        .expect("a clean batch first");
    let before = redis_scores(&f.settings, &key);
    let e = z
        .apply(&info(&f, 1, false), &vs, &serde_json::Value::Null)
        .expect_err("NaN must fail the batch");
    assert_eq!(
        redis_scores(&f.settings, &key),
        before,
        "no increment of the batch was applied"
    );
    assert_eq!(
        marker(&f, &key, &z),
        Some(0),
        "the marker stays at the last applied batch"
    );
    assert!(e.to_string().contains("Nowhere"), "{e}");
    // the rows check() names are the NaN ones, with a reason
    let refused = z.check(&info(&f, 1, false), &vs);
    assert_eq!(
        refused.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        vec![7, 19]
    );
    assert!(
        refused
            .iter()
            .all(|(_, why)| why.contains("NaN") && why.contains("Nowhere")),
        "{refused:?}"
    );
    // infinities too
    let inf = RedisZIncr::new(
        &key,
        |v: &Visit| v.country.clone(),
        |_: &Visit| f64::INFINITY,
    );
    assert_eq!(inf.check(&info(&f, 1, false), &vs[..2]).len(), 2);
    // and a batch sum that would overflow to infinity: the second 1e308 for one member
    let huge = RedisZIncr::new(&key, |_: &Visit| "m".to_string(), |_: &Visit| 1e308);
    assert_eq!(
        huge.check(&info(&f, 1, false), &vs[..3])
            .iter()
            .map(|(i, _)| *i)
            .collect::<Vec<_>>(),
        vec![1, 2]
    );
    // the engine applies the batch without the refused rows: all of them arrive
    let good: Vec<Visit> = vs
        .iter()
        .filter(|v| v.country != "Nowhere")
        .cloned()
        .collect();
    z.apply(&info(&f, 1, false), &good, &serde_json::Value::Null)
        .expect("good rows");
    let mut want = sum_by(&vs[..3], |v| v.country.clone());
    for (k, d) in sum_by(&good, |v| v.country.clone()) {
        *want.entry(k).or_default() += d;
    }
    assert_eq!(redis_scores(&f.settings, &key), want);
    assert_eq!(marker(&f, &key, &z), Some(1));
}
