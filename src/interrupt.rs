//! Jupyter's stop button (■) stops the running kit call, not the kernel.
//!
//! The kernelspec asks Jupyter to interrupt with a signal (`interrupt_mode: signal`): Jupyter
//! sends SIGINT to the kernel's whole process group. `kernel/evcxr-kernel.sh` ignores SIGINT
//! before it starts evcxr_jupyter, so evcxr_jupyter ignores it, and so does the process that
//! runs the cells (evcxr starts it, the ignored signal is inherited), until the kit is loaded
//! there: then this module's handler takes SIGINT in that process only (the kit is one dylib per
//! kernel, so one handler and one set of flags). Without the signal mode, evcxr_jupyter answers
//! an interrupt by killing that process, and every variable is lost.
//!
//! What a press does:
//! - the handler records the press ([`interrupted`] becomes true). Every bounded kit loop (a
//!   watch, a wait, the monitor, `await_termination`, [`sleep`]) checks it at least once a
//!   second and returns with what it has; the first one to notice says "interrupted" once.
//!   Background work (a running query, the generator, a dashboard) never checks it: it keeps
//!   running, and every variable survives.
//! - a second press while the first was not noticed for [`UNNOTICED`] (nothing of the kit runs:
//!   the cell runs its own loop), and at most [`STALE_AFTER`] after it, falls back to what evcxr
//!   did: the process that runs the cells ends, after saying so on stderr; evcxr starts a new
//!   one for the next cell (variables lost).
//! - a press during a cell's compilation cancels the compilation (the compiler's linker takes
//!   SIGINT; measured: "linking with `cc` failed: signal: 2"); the variables stay.
//! - a noticed press is forgotten once no kit loop has asked for [`FORGET_AFTER`], so a later
//!   cell's loops run normally; loops that follow at once in the same cell stop too (as Python's
//!   KeyboardInterrupt ends the whole cell).
//!
//! Outside evcxr's cell process (tests, the `bde` binary) no handler is installed and
//! [`interrupted`] stays false unless [`install`] is called.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long a press may go unnoticed before a second press ends the cell's process.
pub const UNNOTICED: Duration = Duration::from_secs(2);
/// How long after the last kit loop noticed a press it is forgotten.
pub const FORGET_AFTER: Duration = Duration::from_secs(3);
/// How long a press that no kit loop noticed stays pending (■ pressed while nothing ran, or
/// during a cell's compilation, which the signal cancels): after that a second press is a new
/// first press, and a kit call that starts runs normally.
pub const STALE_AFTER: Duration = Duration::from_secs(10);
/// The environment variable evcxr sets in the process that runs the cells.
const EVCXR_RUNTIME_VAR: &str = "EVCXR_IS_RUNTIME";

/// The presses of one process: times in milliseconds since [`base`], 0 for none.
#[derive(Debug, Default)]
struct Presses {
    /// The pending press.
    pressed_at: AtomicU64,
    /// When a kit loop last noticed the pending press.
    noticed_at: AtomicU64,
}

/// The process's presses (the handler writes them, kit loops read them).
static PRESSES: Presses = Presses {
    pressed_at: AtomicU64::new(0),
    noticed_at: AtomicU64::new(0),
};
static BASE: OnceLock<Instant> = OnceLock::new();

fn base() -> Instant {
    *BASE.get_or_init(Instant::now)
}

/// Milliseconds since [`base`], at least 1 (0 means "none" in the flags).
fn now_ms() -> u64 {
    (base().elapsed().as_millis() as u64).max(1)
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

impl Presses {
    /// Whether a kit call asking at `now` is interrupted; `Some(true)` the first time a press is
    /// noticed (to say so once).
    fn ask(&self, now: u64) -> Option<bool> {
        let pressed = self.pressed_at.load(Ordering::SeqCst);
        if pressed == 0 {
            return None;
        }
        let noticed = self.noticed_at.load(Ordering::SeqCst);
        let forget = if noticed == 0 {
            // Pressed while no kit call ran, long ago: not meant for this call.
            now.saturating_sub(pressed) > ms(STALE_AFTER)
        } else {
            // Handled by an earlier kit call, and nothing asked since: a new call runs normally.
            now.saturating_sub(noticed) > ms(FORGET_AFTER)
        };
        if forget {
            let _ =
                self.pressed_at
                    .compare_exchange(pressed, 0, Ordering::SeqCst, Ordering::SeqCst);
            self.noticed_at.store(0, Ordering::SeqCst);
            return None;
        }
        Some(self.noticed_at.swap(now, Ordering::SeqCst) == 0)
    }

    /// What the handler does with a press at `now`: `true` ends the process.
    fn press(&self, now: u64) -> bool {
        let pressed = self.pressed_at.load(Ordering::SeqCst);
        let noticed = self.noticed_at.load(Ordering::SeqCst);
        let age = now.saturating_sub(pressed);
        if pressed != 0 && noticed == 0 && age <= ms(STALE_AFTER) {
            // A press is pending that no kit loop has seen.
            return age >= ms(UNNOTICED);
        }
        self.pressed_at.store(now, Ordering::SeqCst);
        self.noticed_at.store(0, Ordering::SeqCst);
        false
    }
}

/// True when ■ was pressed while kit calls run: the running kit call should return now with
/// what it has. The first call that sees a press prints "interrupted" (once per press).
pub fn interrupted() -> bool {
    match PRESSES.ask(now_ms()) {
        None => false,
        Some(first) => {
            if first {
                println!(
                    "interrupted (■): the running kit call stops with what it has; background \
                     jobs keep running and every variable is kept"
                );
            }
            true
        }
    }
}

/// Sleeps for `d` in steps of at most 100 ms; true (and returns early) when interrupted.
pub fn sleep(d: Duration) -> bool {
    let until = Instant::now() + d;
    loop {
        if interrupted() {
            return true;
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
}

/// The error of a kit call that was interrupted and has no partial result to return.
pub fn stopped(what: impl std::fmt::Display) -> crate::error::Error {
    crate::error::Error::Interrupted(what.to_string())
}

#[cfg(unix)]
mod unix {
    use std::os::raw::c_int;

    pub const SIGINT: c_int = 2;
    const SIG_DFL: usize = 0;

    extern "C" {
        fn signal(signum: c_int, handler: usize) -> usize;
        fn raise(sig: c_int) -> c_int;
        fn write(fd: c_int, buf: *const u8, count: usize) -> isize;
    }

    const ENDING: &str = "\nbde_kit: ■ pressed again while no kit call runs: ending the process that runs \
                          the cells (as evcxr does); its variables are lost, the next cell starts a new one\n";

    extern "C" fn on_sigint(_: c_int) {
        // Only async-signal-safe work here: atomics, clock_gettime (Instant), write, raise.
        if super::PRESSES.press(super::now_ms()) {
            // SAFETY: write(2) and signal/raise are async-signal-safe; the buffer is static.
            unsafe {
                write(2, ENDING.as_ptr(), ENDING.len());
                signal(SIGINT, SIG_DFL);
                raise(SIGINT);
            }
        }
    }

    pub fn install() {
        // SAFETY: installs a handler that only touches atomics (see on_sigint).
        unsafe {
            signal(SIGINT, on_sigint as extern "C" fn(c_int) as usize);
        }
    }
}

/// Installs the SIGINT handler in this process (once). Done automatically when the kit is
/// loaded into evcxr's cell process; other programs may call it to get the same behaviour.
pub fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        base();
        #[cfg(unix)]
        unix::install();
    });
}

/// Runs when the kit's library is loaded (Linux: `.init_array`): installs the handler only in
/// evcxr's cell process. No thread is started here (the loader's lock is held).
#[cfg(target_os = "linux")]
extern "C" fn install_in_evcxr_cell_process() {
    if std::env::var_os(EVCXR_RUNTIME_VAR).is_some() {
        install();
    }
}

#[cfg(target_os = "linux")]
#[used]
#[link_section = ".init_array"]
static INSTALL_AT_LOAD: extern "C" fn() = install_in_evcxr_cell_process;

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1000;

    #[test]
    fn a_press_is_seen_by_the_running_call_and_forgotten_after_it() {
        let p = Presses::default();
        assert_eq!(p.ask(5 * S), None, "no press");
        assert!(!p.press(10 * S), "a first press never ends the process");
        assert_eq!(
            p.ask(10 * S + 300),
            Some(true),
            "the running call notices (and says so)"
        );
        assert_eq!(
            p.ask(11 * S),
            Some(false),
            "its outer loops see it too, said once"
        );
        assert_eq!(
            p.ask(11 * S + ms(FORGET_AFTER) + 1),
            None,
            "nothing asked for FORGET_AFTER: a later call runs normally"
        );
        assert_eq!(p.ask(30 * S), None);
    }

    #[test]
    fn a_press_while_nothing_runs_goes_stale() {
        let p = Presses::default();
        assert!(!p.press(10 * S));
        assert_eq!(p.ask(10 * S + ms(STALE_AFTER) + 1), None);
    }

    #[test]
    fn a_second_press_ends_the_process_only_when_nothing_noticed_the_first() {
        let p = Presses::default();
        assert!(!p.press(10 * S));
        assert!(
            !p.press(10 * S + 500),
            "a quick second press while a kit loop may still notice: kept"
        );
        assert!(
            p.press(10 * S + ms(UNNOTICED)),
            "unnoticed for UNNOTICED: the fallback ends the process"
        );
        let r = Presses::default();
        assert!(!r.press(10 * S));
        assert!(
            !r.press(10 * S + ms(STALE_AFTER) + 1),
            "a press long after an unnoticed one (during a compilation) is a new first press"
        );
        assert!(r.press(10 * S + ms(STALE_AFTER) + 1 + ms(UNNOTICED)));
        let q = Presses::default();
        assert!(!q.press(10 * S));
        assert_eq!(q.ask(10 * S + 100), Some(true), "a kit loop notices");
        assert!(
            !q.press(20 * S),
            "a kit loop saw the first press: a new press is a new interrupt, not a kill"
        );
        assert_eq!(q.ask(20 * S + 100), Some(true), "and is noticed as new");
    }
}
