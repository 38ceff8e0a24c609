//! The lazy re-arm of the notifier (waypass's patch to polling 3.11.0, see
//! VENDORED.md) under a race: `notify()` from another thread racing socket
//! events and timed waits, then an untimed wait that only a notification can
//! end. No notification may be lost: every untimed wait must return.
//!
//! With the re-arm removed (never clearing and re-registering the notifier),
//! the first notification the poller returns disarms the oneshot notifier for
//! good, and the first untimed wait hangs: the watchdog below turns that hang
//! into a failure.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::Duration;

use polling::{Event, Events, Poller};

/// Rounds of (burst racing timed waits, then one untimed wait).
const ROUNDS: usize = 300;
/// Notifications and socket writes per burst.
const BURST: usize = 64;
/// How long the whole test may take before it counts as hung.
const WATCHDOG: Duration = Duration::from_secs(20);
/// The key of the socket's read end.
const SOCKET: usize = 1;

#[test]
fn no_notification_is_lost_when_notify_races_socket_events() {
    let (done_tx, done_rx) = mpsc::channel();
    let runner = thread::spawn(move || {
        race(ROUNDS);
        let _ = done_tx.send(());
    });
    match done_rx.recv_timeout(WATCHDOG) {
        Ok(()) => runner.join().unwrap(),
        // The runner panicked: report its panic.
        Err(mpsc::RecvTimeoutError::Disconnected) => runner.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Timeout) => panic!(
            "an untimed wait did not return within {WATCHDOG:?}: a notification was lost"
        ),
    }
}

/// The notifier's event behind another in one batch: it must be re-armed
/// too, whatever its place in the list (checked without threads, so that the
/// order is known).
#[test]
fn notifier_behind_a_socket_event_is_rearmed() {
    let (done_tx, done_rx) = mpsc::channel();
    thread::spawn(move || {
        let poller = Poller::new().unwrap();
        let (mut reader, mut writer) = UnixStream::pair().unwrap();
        reader.set_nonblocking(true).unwrap();
        unsafe { poller.add(&reader, Event::readable(SOCKET)).unwrap() };
        let mut events = Events::new();
        for _ in 0..100 {
            // Ready first: the socket, then the notifier.
            writer.write_all(&[1]).unwrap();
            poller.notify().unwrap();
            events.clear();
            poller.wait(&mut events, None).unwrap();
            drain_and_rearm(&poller, &mut reader, &events);
            // Only the notifier can end this wait.
            poller.notify().unwrap();
            events.clear();
            poller.wait(&mut events, None).unwrap();
            drain_and_rearm(&poller, &mut reader, &events);
        }
        let _ = done_tx.send(());
    });
    done_rx
        .recv_timeout(WATCHDOG)
        .expect("an untimed wait did not return: a notification was lost");
}

/// Runs `rounds` rounds; returns only if every untimed wait returned.
fn race(rounds: usize) {
    let poller = Arc::new(Poller::new().unwrap());
    let (mut reader, writer) = UnixStream::pair().unwrap();
    reader.set_nonblocking(true).unwrap();
    unsafe { poller.add(&reader, Event::readable(SOCKET)).unwrap() };

    let start = Arc::new(Barrier::new(2));
    let burst_done = Arc::new(AtomicBool::new(false));
    let untimed_waits = Arc::new(AtomicUsize::new(0));
    let (waiting_tx, waiting_rx) = mpsc::channel::<()>();

    let notifier = {
        let (poller, start, burst_done) = (poller.clone(), start.clone(), burst_done.clone());
        let mut writer = writer;
        thread::spawn(move || {
            for round in 0..rounds {
                start.wait();
                // The burst: notifications racing socket events and the
                // main thread's timed waits.
                for i in 0..BURST {
                    if (i + round) % 3 != 0 {
                        writer.write_all(&[1]).unwrap();
                    }
                    poller.notify().unwrap();
                    if i % 8 == 0 {
                        thread::yield_now();
                    }
                }
                burst_done.store(true, Ordering::SeqCst);
                // One more notification once the main thread is about to
                // wait without a timeout: sometimes before it enters
                // epoll_wait, sometimes during.
                waiting_rx.recv().unwrap();
                for _ in 0..(round % 4) * 50 {
                    std::hint::spin_loop();
                }
                // On odd rounds a socket event first, so that the wait gets
                // the socket's event before the notifier's in one batch (a
                // re-arm that only looked at the first event would miss it;
                // the next even round's wait would then hang).
                if round % 2 == 1 {
                    writer.write_all(&[1]).unwrap();
                }
                poller.notify().unwrap();
            }
        })
    };

    let mut events = Events::new();
    for round in 0..rounds {
        burst_done.store(false, Ordering::SeqCst);
        start.wait();
        // Timed waits (zero and short timeouts, both through the timerfd
        // path and the zero-timeout path) while the burst runs.
        let mut timed = 0u32;
        while !burst_done.load(Ordering::SeqCst) || timed == 0 {
            let timeout = if timed % 2 == 0 {
                Duration::ZERO
            } else {
                Duration::from_micros(200)
            };
            events.clear();
            poller.wait(&mut events, Some(timeout)).unwrap();
            drain_and_rearm(&poller, &mut reader, &events);
            timed += 1;
        }
        // Whatever the burst left readable on the socket is consumed and
        // the socket re-armed, so that on even rounds only a notification
        // can end the untimed wait below (a stale one from the burst, or the
        // last one).
        drain(&mut reader);
        poller.modify(&reader, Event::readable(SOCKET)).unwrap();

        waiting_tx.send(()).unwrap();
        events.clear();
        poller.wait(&mut events, None).unwrap();
        drain_and_rearm(&poller, &mut reader, &events);
        untimed_waits.fetch_add(1, Ordering::SeqCst);
        let _ = round;
    }
    notifier.join().unwrap();
    assert_eq!(untimed_waits.load(Ordering::SeqCst), rounds);
}

/// Reads the socket dry and re-arms its oneshot interest if it was returned.
fn drain_and_rearm(poller: &Poller, reader: &mut UnixStream, events: &Events) {
    if events.iter().any(|ev| ev.key == SOCKET) {
        drain(reader);
        poller.modify(&*reader, Event::readable(SOCKET)).unwrap();
    }
}

/// Reads the socket until it would block (or is at end of file: the writer
/// is gone once the other thread is done).
fn drain(reader: &mut UnixStream) {
    let mut buf = [0u8; 256];
    while matches!(reader.read(&mut buf), Ok(n) if n > 0) {}
}
