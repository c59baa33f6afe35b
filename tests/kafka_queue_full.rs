//! Issue 18: the kit's one queue-full backoff (`io::kafka::enqueue`). A producer whose local
//! queue holds ONE record gets `QueueFull` on every record sent before the previous one was
//! acknowledged; `enqueue` waits for room, so every record is delivered, in order.

use bde_kit::io::kafka;
use bde_kit::rdkafka::producer::{FutureProducer, FutureRecord};
use bde_kit::Settings;

#[test]
fn a_full_local_queue_is_waited_for_and_every_record_is_delivered() {
    let settings = Settings::from_env();
    let topic = format!("bde_test.queue_full.{}", std::process::id());
    kafka::create_topics(&settings, &[&topic], 1).expect("create topic");
    let producer: FutureProducer = kafka::client_config(&settings)
        .set("queue.buffering.max.messages", "1")
        .set("linger.ms", "20")
        .create()
        .expect("producer");
    let t = topic.clone();
    let (full_at_once, offsets) = bde_kit::block_on(async move {
        // without waiting, the second record meets a full queue (the first lingers 20 ms)
        let first = producer.send_result(FutureRecord::<(), _>::to(&t).payload("probe"));
        let second = producer.send_result(FutureRecord::<(), _>::to(&t).payload("probe"));
        let full_at_once = second.is_err();
        let mut deliveries = vec![first.expect("the first record fits")];
        deliveries.extend(second.ok());
        for i in 0..20 {
            let v = format!("record {i}");
            let rec = FutureRecord::<(), _>::to(&t).payload(&v);
            deliveries.push(kafka::enqueue(&producer, rec).await.expect("enqueued"));
        }
        let mut offsets = Vec::new();
        for d in deliveries {
            offsets.push(d.await.expect("delivered").expect("acknowledged").offset);
        }
        (full_at_once, offsets)
    })
    .expect("runtime");
    let _ = kafka::delete_topics(&settings, &[&topic]);
    assert!(
        full_at_once,
        "the probe must meet a full queue, else the test proves nothing"
    );
    assert_eq!(offsets.len(), 21, "probe + 20 records: {offsets:?}");
    assert!(
        offsets.windows(2).all(|w| w[0] < w[1]),
        "in order: {offsets:?}"
    );
}
