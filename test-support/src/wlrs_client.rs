//! A wayland-rs client (`wayland-client` 0.31, rust backend) for the
//! server's end-to-end tests: binds `wl_seat`, creates keyboards and
//! collects what the server sends them.
//!
//! It is a test peer, not a toolkit: one seat, keyboards only. Every wait
//! is bounded by the harness's `PATIENCE` (a hang detector, not a timing
//! assertion).

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Instant;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use wayland_client::protocol::{wl_callback, wl_keyboard, wl_registry, wl_seat};
use wayland_client::{Connection, Dispatch, EventQueue, Proxy, QueueHandle, WEnum};
use xkbcommon::xkb;

use crate::PATIENCE;

/// One `wl_keyboard.keymap` event.
#[derive(Debug)]
pub struct KeymapEvent {
    /// Which keyboard (index in creation order) received it.
    pub keyboard: usize,
    /// The format (1 = xkb_v1).
    pub format: u32,
    /// The fd, owned by the test.
    pub fd: OwnedFd,
    /// The announced size.
    pub size: u32,
}

impl KeymapEvent {
    /// The bytes of the keymap through a private read-only mapping, as a
    /// version 7 client must map it; the trailing NUL included.
    pub fn bytes(&self) -> Vec<u8> {
        // SAFETY: the file is a sealed memfd (or a plain file in other
        // tests) that nobody truncates while this map lives.
        let map = unsafe {
            memmap2::MmapOptions::new()
                .len(self.size as usize)
                .map_copy_read_only(&self.fd)
        }
        .expect("MAP_PRIVATE of the keymap fd");
        map.to_vec()
    }

    /// The text before the first NUL, as libxkbcommon < 1.6 needs it.
    pub fn text(&self) -> String {
        let bytes = self.bytes();
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        String::from_utf8(bytes[..end].to_vec()).expect("keymap is UTF-8")
    }

    /// The keymap compiled with xkbcommon.
    pub fn compile(&self) -> xkb::Keymap {
        let ctx = xkb::Context::new(xkb::CONTEXT_NO_FLAGS);
        xkb::Keymap::new_from_string(
            &ctx,
            self.text(),
            xkb::KEYMAP_FORMAT_TEXT_V1,
            xkb::COMPILE_NO_FLAGS,
        )
        .expect("the keymap compiles")
    }
}

/// Everything the server has told this client.
#[derive(Debug, Default)]
pub struct Seen {
    /// `wl_registry.global`s: (name, interface, version).
    pub globals: Vec<(u32, String, u32)>,
    /// The seat, once bound.
    pub seat: Option<wl_seat::WlSeat>,
    /// `wl_seat.capabilities`.
    pub capabilities: Option<u32>,
    /// `wl_seat.name`.
    pub seat_name: Option<String>,
    /// Keyboards created, in order.
    pub keyboards: Vec<wl_keyboard::WlKeyboard>,
    /// Keymap events, in arrival order.
    pub keymaps: Vec<KeymapEvent>,
    /// `repeat_info` (keyboard index, rate, delay).
    pub repeats: Vec<(usize, i32, i32)>,
    /// Completed `wl_display.sync` callbacks.
    pub syncs_done: usize,
}

/// A connected wayland-rs client with its queue.
pub struct WlClient {
    pub conn: Connection,
    queue: EventQueue<Seen>,
    pub seen: Seen,
}

impl WlClient {
    /// Connects to `socket`, lists the globals and binds `wl_seat` at the
    /// highest version both sides know (at least 7).
    pub fn connect(socket: &Path) -> WlClient {
        let stream = UnixStream::connect(socket).expect("connect to the server");
        let conn = Connection::from_socket(stream).expect("wayland connection");
        let queue = conn.new_event_queue();
        let mut client = WlClient {
            conn,
            queue,
            seen: Seen::default(),
        };
        let qh = client.queue.handle();
        let registry = client.conn.display().get_registry(&qh, ());
        client.roundtrip();
        let (name, _, advertised) = client
            .seen
            .globals
            .iter()
            .find(|(_, iface, _)| iface == "wl_seat")
            .cloned()
            .expect("the server offers wl_seat");
        let version = advertised.min(wl_seat::WlSeat::interface().version);
        assert!(version >= 7, "wl_seat version {version} < 7");
        let seat = registry.bind::<wl_seat::WlSeat, _, _>(name, version, &qh, ());
        client.seen.seat = Some(seat);
        client.roundtrip();
        client
    }

    /// The bound seat.
    pub fn seat(&self) -> &wl_seat::WlSeat {
        self.seen.seat.as_ref().expect("seat bound")
    }

    /// Creates a keyboard and waits for its keymap; returns the keymap's
    /// index in `seen.keymaps`.
    pub fn get_keyboard(&mut self) -> usize {
        let qh = self.queue.handle();
        let index = self.seen.keyboards.len();
        let keyboard = self.seat().get_keyboard(&qh, index);
        self.seen.keyboards.push(keyboard);
        self.roundtrip();
        self.seen
            .keymaps
            .iter()
            .rposition(|k| k.keyboard == index)
            .expect("a keymap event for the new keyboard")
    }

    /// A `wl_display.sync` round trip, bounded by `PATIENCE`.
    pub fn roundtrip(&mut self) {
        let qh = self.queue.handle();
        let target = self.seen.syncs_done + 1;
        self.conn.display().sync(&qh, ());
        self.dispatch_until(|seen| seen.syncs_done >= target);
    }

    /// Reads and dispatches events until `cond` holds; panics if the
    /// connection fails or nothing satisfies it within `PATIENCE`.
    pub fn dispatch_until(&mut self, cond: impl Fn(&Seen) -> bool) {
        let start = Instant::now();
        loop {
            self.queue
                .dispatch_pending(&mut self.seen)
                .expect("dispatch");
            if cond(&self.seen) {
                return;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "no matching event within {PATIENCE:?}"
            );
            self.conn.flush().expect("flush");
            if let Some(guard) = self.queue.prepare_read() {
                let mut fds = [PollFd::new(guard.connection_fd(), PollFlags::POLLIN)];
                let ready = poll(&mut fds, PollTimeout::from(100u16)).expect("poll");
                if ready > 0 {
                    guard.read().expect("read events");
                }
            }
        }
    }

    /// Releases keyboard `index` (`wl_keyboard.release`, version 3+).
    pub fn release_keyboard(&mut self, index: usize) {
        self.seen.keyboards[index].release();
    }
}

impl AsFd for WlClient {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.conn.as_fd()
    }
}

impl Dispatch<wl_registry::WlRegistry, ()> for Seen {
    fn event(
        seen: &mut Self,
        _: &wl_registry::WlRegistry,
        event: wl_registry::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wl_registry::Event::Global {
            name,
            interface,
            version,
        } = event
        {
            seen.globals.push((name, interface, version));
        }
    }
}

impl Dispatch<wl_seat::WlSeat, ()> for Seen {
    fn event(
        seen: &mut Self,
        _: &wl_seat::WlSeat,
        event: wl_seat::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        match event {
            wl_seat::Event::Capabilities {
                capabilities: WEnum::Value(caps),
            } => seen.capabilities = Some(caps.bits()),
            wl_seat::Event::Capabilities {
                capabilities: WEnum::Unknown(raw),
            } => seen.capabilities = Some(raw),
            wl_seat::Event::Name { name } => seen.seat_name = Some(name),
            _ => {}
        }
    }
}

impl Dispatch<wl_keyboard::WlKeyboard, usize> for Seen {
    fn event(
        seen: &mut Self,
        _: &wl_keyboard::WlKeyboard,
        event: wl_keyboard::Event,
        index: &usize,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        match event {
            wl_keyboard::Event::Keymap { format, fd, size } => {
                let format = match format {
                    WEnum::Value(v) => v as u32,
                    WEnum::Unknown(raw) => raw,
                };
                seen.keymaps.push(KeymapEvent {
                    keyboard: *index,
                    format,
                    fd,
                    size,
                });
            }
            wl_keyboard::Event::RepeatInfo { rate, delay } => {
                seen.repeats.push((*index, rate, delay))
            }
            _ => {}
        }
    }
}

impl Dispatch<wl_callback::WlCallback, ()> for Seen {
    fn event(
        seen: &mut Self,
        _: &wl_callback::WlCallback,
        event: wl_callback::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wl_callback::Event::Done { .. } = event {
            seen.syncs_done += 1;
        }
    }
}

/// (st_dev, st_ino) of an fd.
pub fn dev_ino(fd: impl AsFd) -> (u64, u64) {
    let st = nix::sys::stat::fstat(fd.as_fd()).expect("fstat");
    (st.st_dev, st.st_ino)
}
