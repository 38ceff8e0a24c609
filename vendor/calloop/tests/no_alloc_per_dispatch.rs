//! A dispatch that wakes for a ready fd allocates nothing.
//!
//! An event loop that wakes once per request (a Wayland server answering
//! `wl_display.sync`) should not pay a `malloc` and a `free` per wakeup for
//! the list of events. This counts the allocations made by this thread
//! during `dispatch` calls, after a warm-up, with a counting global
//! allocator; it is not a timing test.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use calloop::generic::Generic;
use calloop::{EventLoop, Interest, Mode, PostAction};

thread_local! {
    /// Whether this thread's allocations are being counted, and how many.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

/// The system allocator, counting the allocations of threads that asked.
struct CountingAllocator;

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` through `alloc` or `realloc` above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        // SAFETY: forwarded unchanged; the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn count_one() {
    // `try_with`: the thread-locals may already be gone while a thread exits.
    let _ = COUNTING.try_with(|counting| {
        if counting.get() {
            let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        }
    });
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Runs `f`, returning the number of allocations this thread made in it.
fn allocations_in(f: impl FnOnce()) -> usize {
    ALLOCATIONS.with(|n| n.set(0));
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.with(Cell::get)
}

/// One byte written, one dispatch that reads it, `rounds` times.
fn round_trips(
    event_loop: &mut EventLoop<'static, usize>,
    writer: &mut UnixStream,
    timeout: Option<Duration>,
    rounds: usize,
    handled: &mut usize,
) {
    for _ in 0..rounds {
        let before = *handled;
        writer.write_all(&[1]).unwrap();
        event_loop.dispatch(timeout, handled).unwrap();
        assert_eq!(*handled, before + 1, "the byte was not dispatched");
    }
}

fn check_no_allocation(timeout: Option<Duration>) {
    let mut event_loop = EventLoop::<usize>::try_new().unwrap();
    let (mut writer, reader) = UnixStream::pair().unwrap();
    // Level mode, as a server reading requests one batch per wakeup does.
    let source = Generic::new(reader, Interest::READ, Mode::Level);
    event_loop
        .handle()
        .insert_source(source, |_, reader, handled: &mut usize| {
            let mut byte = [0u8; 1];
            assert_eq!((&**reader).read(&mut byte)?, 1);
            *handled += 1;
            Ok(PostAction::Continue)
        })
        .unwrap();

    let mut handled = 0;
    // Warm-up: let any buffer grow to its working size.
    round_trips(&mut event_loop, &mut writer, timeout, 10, &mut handled);
    let allocations = allocations_in(|| {
        round_trips(&mut event_loop, &mut writer, timeout, 1000, &mut handled);
    });
    assert_eq!(
        allocations, 0,
        "allocations in 1000 dispatches ({timeout:?})"
    );
}

#[test]
fn dispatch_without_timeout_allocates_nothing() {
    check_no_allocation(None);
}

#[test]
fn dispatch_with_timeout_allocates_nothing() {
    check_no_allocation(Some(Duration::from_secs(5)));
}
