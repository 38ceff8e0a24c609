//! Follows the keymap of a Wayland server from inside a calloop
//! [`EventLoop`], without blocking: the [`KeymapWatcher`]'s socket is a
//! [`Generic`] source, and each wakeup takes what arrived with
//! [`KeymapWatcher::poll_keymap`].
//!
//! ```text
//! cargo run -p waypass-client --example calloop_keymap -- [SOCKET] [COUNT]
//! ```
//!
//! Prints one line per keymap (its layout names) and exits after COUNT
//! keymaps (default 2): send the server a SIGHUP after changing its
//! `--keymap` file to see the second. SOCKET is a path or a name under
//! `$XDG_RUNTIME_DIR`; `-` or nothing is the usual `WAYLAND_DISPLAY`
//! search.
//!
//! Only the setup (registry, seat, `get_keyboard`) blocks, bounded by
//! [`FetchOptions::timeout`]; everything after runs in the loop.

use std::os::fd::AsFd;
use std::process::ExitCode;

use calloop::generic::Generic;
use calloop::{EventLoop, Interest, LoopSignal, Mode, PostAction};
use waypass_client::{FetchOptions, KeymapWatcher};

/// What the loop's callbacks share.
struct Follow {
    watcher: KeymapWatcher,
    seen: usize,
    wanted: usize,
    stop: LoopSignal,
    /// Why the loop ended early, for the exit status.
    failed: Option<String>,
}

impl Follow {
    /// Takes every keymap that has arrived; stops the loop after `wanted`,
    /// or on an error (the server going away included).
    fn take_keymaps(&mut self) {
        loop {
            match self.watcher.poll_keymap() {
                Ok(Some(keymap)) => {
                    self.seen += 1;
                    println!("keymap {}: {}", self.seen, keymap.layouts().join(", "));
                    if self.seen >= self.wanted {
                        self.stop.stop();
                        return;
                    }
                }
                // The socket is drained: wait for the next wakeup.
                Ok(None) => return,
                Err(e) => {
                    self.failed = Some(waypass_client::chain_to_string(&e));
                    self.stop.stop();
                    return;
                }
            }
        }
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let socket = args.next().filter(|s| s != "-");
    let wanted = args
        .next()
        .map_or(2, |n| n.parse().expect("COUNT is a number"));

    let watcher = match KeymapWatcher::connect(socket.as_deref(), FetchOptions::default()) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("calloop_keymap: {}", waypass_client::chain_to_string(&e));
            return ExitCode::FAILURE;
        }
    };
    let mut event_loop: EventLoop<Follow> = EventLoop::try_new().expect("epoll instance");
    // The source owns a duplicate of the socket fd: the same open socket,
    // so its readiness is the watcher's, while the watcher itself stays in
    // the shared state where the callback may borrow it mutably.
    let socket_fd = watcher
        .as_fd()
        .try_clone_to_owned()
        .expect("dup the socket");
    event_loop
        .handle()
        .insert_source(
            Generic::new(socket_fd, Interest::READ, Mode::Level),
            |_readiness, _fd, follow: &mut Follow| {
                follow.take_keymaps();
                Ok(PostAction::Continue)
            },
        )
        .expect("register the socket");

    let mut follow = Follow {
        watcher,
        seen: 0,
        wanted,
        stop: event_loop.get_signal(),
        failed: None,
    };
    // Sends the setup's get_keyboard and takes a keymap already queued;
    // from here on the loop wakes when the server writes.
    follow.take_keymaps();
    if follow.seen < follow.wanted && follow.failed.is_none() {
        event_loop
            .run(None, &mut follow, |_| {})
            .expect("event loop");
    }
    match follow.failed {
        Some(why) => {
            eprintln!("calloop_keymap: {why}");
            ExitCode::FAILURE
        }
        None => ExitCode::SUCCESS,
    }
}
