//! The `hello_v1` server written with wayland-server 0.31, for comparison
//! with `hello-server.rs` (waypass). Usage: `wlrs-hello-server SOCKET`.

use std::os::fd::AsFd;
use std::sync::Arc;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use wayland_server::backend::{ClientData, ClientId, DisconnectReason};
use wayland_server::ListeningSocket;
use wayland_server::{Client, DataInit, Dispatch, Display, DisplayHandle, GlobalDispatch, New};

mod protocol {
    // The generated code names `super::wayland_server`, as wayland-scanner documents.
    #[allow(clippy::single_component_path_imports)]
    use wayland_server;
    pub mod __interfaces {
        wayland_scanner::generate_interfaces!("protocol/hello-v1.xml");
    }
    use self::__interfaces::*;
    wayland_scanner::generate_server_code!("protocol/hello-v1.xml");
}
use protocol::hello_v1::{self, HelloV1};

struct Greeter;

impl GlobalDispatch<HelloV1, ()> for Greeter {
    fn bind(
        _: &mut Self,
        _: &DisplayHandle,
        _: &Client,
        resource: New<HelloV1>,
        _: &(),
        data_init: &mut DataInit<'_, Self>,
    ) {
        data_init.init(resource, ());
    }
}

impl Dispatch<HelloV1, ()> for Greeter {
    fn request(
        _: &mut Self,
        _: &Client,
        hello: &HelloV1,
        request: hello_v1::Request,
        _: &(),
        _: &DisplayHandle,
        _: &mut DataInit<'_, Self>,
    ) {
        match request {
            hello_v1::Request::Greet { name } => hello.greeting(format!("hello, {name}!")),
        }
    }
}

struct NoData;

impl ClientData for NoData {
    fn initialized(&self, _: ClientId) {}
    fn disconnected(&self, _: ClientId, _: DisconnectReason) {}
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: wlrs-hello-server SOCKET")?;
    let mut display = Display::<Greeter>::new()?;
    display
        .handle()
        .create_global::<Greeter, HelloV1, ()>(1, ());
    let socket = ListeningSocket::bind_absolute(path.into())?;
    println!("listening");
    loop {
        let mut fds = [
            PollFd::new(socket.as_fd(), PollFlags::POLLIN),
            PollFd::new(display.backend().poll_fd(), PollFlags::POLLIN),
        ];
        poll(&mut fds, PollTimeout::NONE)?;
        while let Some(stream) = socket.accept()? {
            display.handle().insert_client(stream, Arc::new(NoData))?;
        }
        display.dispatch_clients(&mut Greeter)?;
        display.flush_clients()?;
    }
}
