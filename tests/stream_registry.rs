//! The registry of running queries: one query per name, replace on request, stop_all.
//! (Its own test binary: `stop_all` stops every query of the process.)

#[path = "stream_util/mod.rs"]
mod stream_util;

use std::time::Duration;

use bde_kit::stream::sink::Console;
use bde_kit::stream::{self, KafkaSource, Query, Start, Status, Stream};
use bde_kit::Error;
use stream_util::*;

#[test]
fn registry_refuses_a_second_query_with_the_same_name_and_stop_all_stops() {
    let mut f = Fixture::new("reg");
    let topic = f.topic("strings");
    let name = format!("reg-{}", f.tag);
    let mk = || Query::new(&name).settings(f.settings.clone()).quiet(true);
    let branch = || {
        Stream::<String>::read(KafkaSource::new(&topic).starting(Start::Earliest))
            .write(Console::new())
    };
    let q = mk().start([branch()]).expect("first");
    assert!(matches!(mk().start([branch()]), Err(Error::QueryRunning(n)) if n == name));
    assert!(stream::active().contains(&name));
    let q2 = mk()
        .replace_running(true)
        .start([branch()])
        .expect("replace");
    assert!(
        q.await_termination(Duration::from_secs(10)).expect("wait"),
        "the replaced query stopped"
    );
    stream::stop_all().expect("stop all");
    assert_eq!(q2.status(), Status::Stopped);
    assert!(!stream::active().contains(&name));
}
