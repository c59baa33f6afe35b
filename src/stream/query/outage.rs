//! Riding out a short outage of Kafka, Redis or MariaDB: a running query retries a step that
//! failed with [`Error::ServiceDown`] (the service did not answer: refused connection, dropped
//! connection, transport timeout) with a growing pause, for at most the query's
//! [`Query::outage_retry`](crate::stream::Query::outage_retry) (default [`OUTAGE_RETRY`]).
//! While it waits, the query's status is [`Status::Retrying`](crate::stream::progress::Status::Retrying) naming the service, its address and
//! the step, and each try prints one line on stderr; when the service answers again the status
//! is `running` again. When the time is up (or a stop is asked for) the query fails with the
//! service's error, which names the service and its address and says how long it was tried.
//!
//! Exactly-once holds because only steps the engine may repeat are retried: reading end
//! offsets, reading a batch's records (the reader goes back to its committed position after a
//! failed read, see `Reader::read`), sending dead letters, and applying one sink to a batch that
//! is written ahead, as a replay (`BatchInfo::replay`), the same way a restart replays it: each
//! sink skips what it applied before (Redis and MariaDB by their batch markers, Kafka by its
//! record headers). Other errors are not an outage and are not retried here.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::stream::query::handle::Shared;

/// How long a running query retries a service that does not answer, by default.
pub const OUTAGE_RETRY: Duration = Duration::from_secs(30);
/// The first pause between two tries; each next one doubles, up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(250);
/// The longest pause between two tries.
const MAX_PAUSE: Duration = Duration::from_secs(4);

/// Whether `e` says the service did not answer (and may answer again), rather than refused.
pub(super) fn is_outage(e: &Error) -> bool {
    matches!(e, Error::ServiceDown { .. })
}

/// Runs `step` (what the query does, for the messages) and retries it while it fails with an
/// outage, for at most `bound` from the first failure. Each retry pauses longer (250 ms, doubling,
/// at most 4 s); a stop request ends the wait at once.
pub(super) fn ride_out<R>(
    shared: &Shared,
    bound: Duration,
    step: &str,
    mut f: impl FnMut() -> Result<R>,
) -> Result<R> {
    let mut first_failure: Option<Instant> = None;
    let mut pause = FIRST_PAUSE;
    let mut tries = 0u32;
    loop {
        let e = match f() {
            Ok(r) => {
                if tries > 0 {
                    eprintln!(
                        "query {}: {step}: the service answers again after {tries} retries",
                        shared.name
                    );
                    shared.set_retrying(None);
                }
                return Ok(r);
            }
            Err(e) if is_outage(&e) => e,
            Err(e) => {
                if tries > 0 {
                    shared.set_retrying(None);
                }
                return Err(e);
            }
        };
        let since = *first_failure.get_or_insert_with(Instant::now);
        let stopping = shared.stop.load(std::sync::atomic::Ordering::SeqCst);
        if since.elapsed() >= bound || stopping {
            let why = if stopping {
                "the query was asked to stop while waiting for it".to_string()
            } else {
                format!(
                    "still not answering after {tries} retries over {:.1?} (the query's outage_retry is {bound:?}; raise it with `Query::outage_retry(..)`)",
                    since.elapsed()
                )
            };
            return Err(gave_up(e, step, &why));
        }
        tries += 1;
        let pause_now = pause.min(bound.saturating_sub(since.elapsed()));
        let note = format!(
            "{} — {step}; retry {tries} in {pause_now:.1?}, giving up {:.0?} after the first failure",
            short(&e),
            bound
        );
        eprintln!("query {}: {note}", shared.name);
        shared.set_retrying(Some(note));
        let until = Instant::now() + pause_now;
        while Instant::now() < until && !shared.stop.load(std::sync::atomic::Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
        }
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

/// "Redis at 127.0.0.1:6390 does not answer (connect: …)": the outage without the fix text.
fn short(e: &Error) -> String {
    match e {
        Error::ServiceDown {
            service,
            address,
            detail,
        } => format!("{service} at {address} does not answer ({detail})"),
        other => other.to_string(),
    }
}

/// The outage error with what the query did and why it stopped trying.
fn gave_up(e: Error, step: &str, why: &str) -> Error {
    match e {
        Error::ServiceDown {
            service,
            address,
            detail,
        } => Error::ServiceDown {
            service,
            address,
            detail: format!(
                "{detail} — {step}: {why}. The batch in flight is written ahead and is applied once when the query starts again"
            ),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Service;
    use std::cell::Cell;

    fn shared() -> Shared {
        Shared::new(
            "outage-unit",
            true,
            std::env::temp_dir().join(format!("bde_outage_unit_{}", std::process::id())),
        )
    }

    fn down() -> Error {
        Error::down(Service::Redis, "127.0.0.1:6390", "connect: refused")
    }

    #[test]
    fn an_outage_is_retried_until_the_service_answers() {
        let s = shared();
        let calls = Cell::new(0);
        let r = ride_out(&s, Duration::from_secs(30), "apply", || {
            calls.set(calls.get() + 1);
            if calls.get() < 3 {
                Err(down())
            } else {
                Ok(7)
            }
        });
        assert_eq!(r.ok(), Some(7));
        assert_eq!(calls.get(), 3);
    }

    #[test]
    fn another_error_is_not_retried() {
        let s = shared();
        let calls = Cell::new(0);
        let r: Result<()> = ride_out(&s, Duration::from_secs(30), "apply", || {
            calls.set(calls.get() + 1);
            Err(Error::invalid("bad"))
        });
        assert!(r.is_err());
        assert_eq!(calls.get(), 1);
    }

    #[test]
    fn giving_up_names_the_service_the_address_and_the_setting() {
        let s = shared();
        let r: Result<()> = ride_out(&s, Duration::ZERO, "sink redis:k, batch 4", || Err(down()));
        let m = r.err().map(|e| e.to_string()).unwrap_or_default();
        for part in [
            "Redis",
            "127.0.0.1:6390",
            "sink redis:k, batch 4",
            "outage_retry",
        ] {
            assert!(m.contains(part), "{part} missing in: {m}");
        }
    }
}
