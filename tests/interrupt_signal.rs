//! A real SIGINT (what Jupyter's ■ sends with `interrupt_mode: signal`) reaches the kit's flag
//! through the handler, stops a kit sleep at once, and leaves the process running.

use std::time::{Duration, Instant};

#[test]
fn sigint_stops_a_kit_sleep_and_the_process_goes_on() {
    bde_kit::interrupt::install();
    assert!(!bde_kit::interrupt::interrupted());
    let sent = std::process::Command::new("kill")
        .args(["-INT", &std::process::id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let t = Instant::now();
    let stopped = bde_kit::interrupt::sleep(Duration::from_secs(30));
    assert!(stopped, "the sleep saw the signal");
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "it returned long before its 30 s"
    );
    assert!(
        bde_kit::interrupt::interrupted(),
        "the loops of the same call see it"
    );
}
