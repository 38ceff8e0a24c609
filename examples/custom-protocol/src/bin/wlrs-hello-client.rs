//! The `hello_v1` client written with wayland-client 0.31, for comparison
//! with `hello-client.rs` (waypass). Usage: `wlrs-hello-client SOCKET NAME`.

use std::os::unix::net::UnixStream;

use wayland_client::globals::{registry_queue_init, GlobalListContents};
use wayland_client::protocol::wl_registry::{self, WlRegistry};
use wayland_client::{Connection, Dispatch, QueueHandle};

mod protocol {
    // The generated code names `super::wayland_client`, as wayland-scanner documents.
    #[allow(clippy::single_component_path_imports)]
    use wayland_client;
    pub mod __interfaces {
        wayland_scanner::generate_interfaces!("protocol/hello-v1.xml");
    }
    use self::__interfaces::*;
    wayland_scanner::generate_client_code!("protocol/hello-v1.xml");
}
use protocol::hello_v1::{self, HelloV1};

#[derive(Default)]
struct Greeted(Option<String>);

impl Dispatch<WlRegistry, GlobalListContents> for Greeted {
    fn event(
        _: &mut Self,
        _: &WlRegistry,
        _: wl_registry::Event,
        _: &GlobalListContents,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
    }
}

impl Dispatch<HelloV1, ()> for Greeted {
    fn event(
        state: &mut Self,
        _: &HelloV1,
        event: hello_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        match event {
            hello_v1::Event::Greeting { text } => state.0 = Some(text),
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (path, name) = (
        args.next().ok_or("usage: SOCKET NAME")?,
        args.next().unwrap_or_default(),
    );
    let conn = Connection::from_socket(UnixStream::connect(path)?)?;
    let (globals, mut queue) = registry_queue_init::<Greeted>(&conn)?;
    let hello: HelloV1 = globals.bind(&queue.handle(), 1..=1, ())?;
    hello.greet(name);
    let mut greeted = Greeted::default();
    queue.roundtrip(&mut greeted)?;
    println!("{}", greeted.0.ok_or("no greeting came")?);
    Ok(())
}
