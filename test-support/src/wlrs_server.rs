//! A wayland-rs test compositor (`wayland-server` 0.31, rust backend) that
//! runs on a thread of the test process, for tests that need a server that
//! is not ours or that misbehaves on purpose.
//!
//! It offers one `wl_seat` global whose behaviour a [`SeatPlan`] scripts:
//! the capabilities it announces, its name, and the `wl_keyboard.keymap`
//! event it sends (any fd, any announced size, any format), plus
//! `repeat_info`. It is not a compositor: no outputs, no surfaces, no input.
//!
//! # Implementation notes
//!
//! The listening socket is bound before [`WlrsServer::start`] returns, so a
//! client may connect at once. The thread polls the listening socket and
//! the display's fd with a short timeout only to notice the stop flag set
//! by `Drop`; nothing in the tests depends on that timing.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use wayland_server::backend::{ClientData, ClientId, DisconnectReason};
use wayland_server::protocol::{wl_keyboard, wl_seat};
use wayland_server::{
    Client, DataInit, Dispatch, Display, DisplayHandle, GlobalDispatch, ListeningSocket, New,
    Resource,
};

/// The keymap event the seat's keyboard sends.
#[derive(Debug, Clone)]
pub struct KeymapPlan {
    /// The file whose fd is sent; it is opened read-only for each keyboard.
    pub file: PathBuf,
    /// The size announced in the event (may lie on purpose).
    pub size: u32,
    /// The format announced (1 = xkb_v1).
    pub format: u32,
}

/// How the seat behaves.
#[derive(Debug, Clone)]
pub struct SeatPlan {
    /// The `wl_seat` version advertised.
    pub version: u32,
    /// The capabilities announced right after the bind.
    pub capabilities: wl_seat::Capability,
    /// The seat's name (sent from version 2).
    pub name: String,
    /// The keymap event, if any.
    pub keymap: Option<KeymapPlan>,
    /// `repeat_info` (rate, delay), sent after the keymap from version 4.
    pub repeat: Option<(i32, i32)>,
}

impl SeatPlan {
    /// A seat with a keyboard that sends `keymap` and repeat 25/600.
    pub fn keyboard(keymap: KeymapPlan) -> SeatPlan {
        SeatPlan {
            version: 7,
            capabilities: wl_seat::Capability::Keyboard,
            name: "wlrs-seat".to_string(),
            keymap: Some(keymap),
            repeat: Some((25, 600)),
        }
    }

    /// A seat with a pointer and no keyboard.
    pub fn pointer_only() -> SeatPlan {
        SeatPlan {
            version: 7,
            capabilities: wl_seat::Capability::Pointer,
            name: "wlrs-seat".to_string(),
            keymap: None,
            repeat: None,
        }
    }
}

/// `text` plus a NUL, written to `path` (a plain file: not a memfd, not
/// sealed), and the plan that sends it with its true size.
pub fn keymap_file(path: &Path, text: &str) -> KeymapPlan {
    let mut bytes = text.as_bytes().to_vec();
    bytes.push(0);
    std::fs::write(path, &bytes).expect("write keymap file");
    KeymapPlan {
        file: path.to_path_buf(),
        size: bytes.len() as u32,
        format: 1,
    }
}

/// The running test compositor; stopped and joined on drop.
pub struct WlrsServer {
    /// The socket path clients connect to.
    pub socket: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl WlrsServer {
    /// Binds `<dir>/wayland-wlrs` and serves `plan` on a thread.
    pub fn start(dir: &Path, plan: SeatPlan) -> WlrsServer {
        let socket = dir.join("wayland-wlrs");
        let listener = ListeningSocket::bind_absolute(socket.clone()).expect("bind wlrs socket");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = thread::spawn(move || serve(listener, plan, &flag));
        WlrsServer {
            socket,
            stop,
            thread: Some(thread),
        }
    }

    /// The socket path as a string argument.
    pub fn socket_arg(&self) -> &str {
        self.socket.to_str().expect("utf-8 socket path")
    }
}

impl Drop for WlrsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(listener: ListeningSocket, plan: SeatPlan, stop: &AtomicBool) {
    let mut display: Display<State> = Display::new().expect("wayland display");
    display
        .handle()
        .create_global::<State, wl_seat::WlSeat, ()>(plan.version, ());
    let mut state = State { plan };
    while !stop.load(Ordering::SeqCst) {
        let (new_client, requests) = {
            let mut fds = [
                PollFd::new(listener.as_fd(), PollFlags::POLLIN),
                PollFd::new(display.backend().poll_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::from(50u16)) {
                Ok(_) => (ready(&fds[0]), ready(&fds[1])),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => panic!("poll: {e}"),
            }
        };
        if new_client {
            if let Ok(Some(stream)) = listener.accept() {
                display
                    .handle()
                    .insert_client(stream, Arc::new(NoData))
                    .expect("insert client");
            }
        }
        if requests {
            // A client misbehaving is its problem, not the test server's.
            let _ = display.dispatch_clients(&mut state);
        }
        let _ = display.flush_clients();
    }
}

fn ready(fd: &PollFd<'_>) -> bool {
    fd.revents().is_some_and(|r| !r.is_empty())
}

struct State {
    plan: SeatPlan,
}

struct NoData;

impl ClientData for NoData {
    fn initialized(&self, _client_id: ClientId) {}
    fn disconnected(&self, _client_id: ClientId, _reason: DisconnectReason) {}
}

impl GlobalDispatch<wl_seat::WlSeat, ()> for State {
    fn bind(
        state: &mut Self,
        _handle: &DisplayHandle,
        _client: &Client,
        resource: New<wl_seat::WlSeat>,
        _global_data: &(),
        data_init: &mut DataInit<'_, Self>,
    ) {
        let seat = data_init.init(resource, ());
        seat.capabilities(state.plan.capabilities);
        if seat.version() >= 2 {
            seat.name(state.plan.name.clone());
        }
    }
}

impl Dispatch<wl_seat::WlSeat, ()> for State {
    fn request(
        state: &mut Self,
        _client: &Client,
        _seat: &wl_seat::WlSeat,
        request: wl_seat::Request,
        _data: &(),
        _dhandle: &DisplayHandle,
        data_init: &mut DataInit<'_, Self>,
    ) {
        if let wl_seat::Request::GetKeyboard { id } = request {
            let keyboard = data_init.init(id, ());
            if let Some(plan) = &state.plan.keymap {
                let file = File::open(&plan.file).expect("open keymap file");
                let format = wl_keyboard::KeymapFormat::try_from(plan.format)
                    .unwrap_or(wl_keyboard::KeymapFormat::NoKeymap);
                keyboard.keymap(format, file.as_fd(), plan.size);
            }
            if let (Some((rate, delay)), true) = (state.plan.repeat, keyboard.version() >= 4) {
                keyboard.repeat_info(rate, delay);
            }
        }
    }
}

impl Dispatch<wl_keyboard::WlKeyboard, ()> for State {
    fn request(
        _state: &mut Self,
        _client: &Client,
        _keyboard: &wl_keyboard::WlKeyboard,
        _request: wl_keyboard::Request,
        _data: &(),
        _dhandle: &DisplayHandle,
        _data_init: &mut DataInit<'_, Self>,
    ) {
    }
}
