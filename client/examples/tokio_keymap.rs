//! Follows the keymap of a Wayland server under tokio, without blocking
//! the runtime: the [`KeymapWatcher`] sits in an [`AsyncFd`], and each
//! readiness takes what arrived with [`KeymapWatcher::poll_keymap`].
//!
//! ```text
//! cargo run -p waypass-client --example tokio_keymap -- [SOCKET] [COUNT]
//! ```
//!
//! Prints one line per keymap (its layout names) and exits after COUNT
//! keymaps (default 2): send the server a SIGHUP after changing its
//! `--keymap` file to see the second. SOCKET is a path or a name under
//! `$XDG_RUNTIME_DIR`; `-` or nothing is the usual `WAYLAND_DISPLAY`
//! search.
//!
//! tokio's reactor watches a duplicate of the watcher's socket fd, so the
//! one `unsafe` (registering a raw fd) rests on an `OwnedFd` that nothing
//! else touches. `AsyncFd` is edge-triggered: after a wakeup, the socket must be read
//! until it is empty before waiting again. `poll_keymap` returning
//! `Ok(None)` says exactly that. The setup (registry, seat,
//! `get_keyboard`) blocks, bounded by [`FetchOptions::timeout`], before
//! the runtime starts.

use std::process::ExitCode;

use std::error::Error;
use std::os::fd::AsFd;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use waypass_client::{FetchOptions, KeymapWatcher};

/// Prints keymaps as they arrive until `wanted` were seen.
async fn follow(mut watcher: KeymapWatcher, wanted: usize) -> Result<(), Box<dyn Error>> {
    // The reactor watches a duplicate of the socket fd: the same open
    // socket, so the same readiness, while the watcher stays a plain
    // `&mut` here.
    let socket = watcher.as_fd().try_clone_to_owned()?;
    // SAFETY: the `AsyncFd` owns `socket`, an `OwnedFd` that nothing else
    // closes or replaces, so its raw fd stays open and the same for the
    // `AsyncFd`'s whole life.
    let socket = unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE) }?;
    let mut seen = 0;
    loop {
        // The first pass sends the setup's get_keyboard and takes a keymap
        // already queued; later ones run after a readiness edge.
        while let Some(keymap) = watcher.poll_keymap()? {
            seen += 1;
            println!("keymap {seen}: {}", keymap.layouts().join(", "));
            if seen >= wanted {
                return Ok(());
            }
        }
        // Drained (EAGAIN): forget the old edge and wait for a new one.
        // Clearing before the next drain loses nothing: data that comes
        // after the drain raises a new edge.
        socket.readable().await?.clear_ready();
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let socket = args.next().filter(|s| s != "-");
    let wanted = args
        .next()
        .map_or(2, |n| n.parse().expect("COUNT is a number"));

    match run(socket.as_deref(), wanted) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tokio_keymap: {}", waypass_client::chain_to_string(&*e));
            ExitCode::FAILURE
        }
    }
}

/// Sets the keyboard up (blocking, bounded), then follows it on a
/// single-threaded runtime: one connection needs no more.
fn run(socket: Option<&str>, wanted: usize) -> Result<(), Box<dyn Error>> {
    let watcher = KeymapWatcher::connect(socket, FetchOptions::default())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    runtime.block_on(follow(watcher, wanted))
}
