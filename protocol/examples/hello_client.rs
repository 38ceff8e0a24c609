//! A client of the custom `hello_v1` global (see `hello_server.rs`), with
//! its tables generated from the same `examples/hello/hello-v1.xml`.
//!
//! ```text
//! cargo run -p waypass-protocol --example hello_client -- /tmp/hello.sock alice
//! ```
//!
//! It finds `hello_v1` in the registry, binds it, sends `greet(name)` and
//! prints the `greeting` that comes back. The socket is found the way
//! libwayland finds it: an absolute path, a name under `XDG_RUNTIME_DIR`,
//! or (with no argument) `WAYLAND_DISPLAY`.

use std::collections::HashMap;
use std::ffi::CString;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use std::os::fd::BorrowedFd;
use waypass_protocol::protocols::wayland::{wl_callback, wl_display, wl_registry};

use waypass_protocol::{
    connect_to_display, Arg, Connection, ConnectionError, Interface, NextError,
};

/// The generated tables of `hello_v1`.
mod hello {
    waypass_scanner::interfaces!("examples/hello/hello-v1.xml");
}
use hello::hello_v1;

const REGISTRY: u32 = 2;
const FIRST_SYNC: u32 = 3;
const HELLO: u32 = 4;
const SECOND_SYNC: u32 = 5;

fn main() -> ExitCode {
    let socket = std::env::args().nth(1);
    let name = std::env::args()
        .nth(2)
        .unwrap_or_else(|| "world".to_owned());
    match run(socket.as_deref(), &name) {
        Ok(greeting) => {
            println!("{greeting}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hello_client: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(socket: Option<&str>, name: &str) -> Result<String, Box<dyn std::error::Error>> {
    let mut conn = Connection::new(connect_to_display(socket)?)?;
    let mut objects: HashMap<u32, &'static Interface> = HashMap::from([
        (1, &wl_display::INTERFACE),
        (REGISTRY, &wl_registry::INTERFACE),
        (FIRST_SYNC, &wl_callback::INTERFACE),
    ]);
    let display = &wl_display::INTERFACE;
    request(
        &mut conn,
        1,
        display,
        wl_display::req::GET_REGISTRY,
        &[Arg::NewId(REGISTRY)],
    )?;
    request(
        &mut conn,
        1,
        display,
        wl_display::req::SYNC,
        &[Arg::NewId(FIRST_SYNC)],
    )?;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut global = None;
    let mut greeting = None;
    loop {
        conn.flush()?;
        conn.recv_wait(Some(deadline))?;
        if Instant::now() >= deadline {
            return Err("no answer within 5 s".into());
        }
        let mut registry_done = false;
        while let Some(event) = conn
            .next_message(|h| {
                let iface = objects.get(&h.sender).ok_or(h.sender)?;
                iface.event(h.opcode, iface.version).map_err(|_| h.sender)
            })
            .map_err(|e: NextError<u32>| e.to_string())?
        {
            match (event.sender, event.opcode, &event.args[..]) {
                (1, wl_display::evt::ERROR, [_, Arg::Uint(code), Arg::Str(text)]) => {
                    let text = text.map(|t| t.to_string_lossy().into_owned());
                    let text = text.unwrap_or_default();
                    return Err(format!("server error {code}: {text}").into());
                }
                (REGISTRY, wl_registry::evt::GLOBAL, [Arg::Uint(n), Arg::Str(Some(i)), _])
                    if i.to_bytes() == hello_v1::INTERFACE.name.as_bytes() =>
                {
                    global = Some(*n);
                }
                (FIRST_SYNC, wl_callback::evt::DONE, _) => registry_done = true,
                (HELLO, hello_v1::evt::GREETING, [Arg::Str(Some(text))]) => {
                    greeting = Some(text.to_string_lossy().into_owned());
                }
                (SECOND_SYNC, wl_callback::evt::DONE, _) => {
                    return greeting.ok_or_else(|| "no greeting came".into());
                }
                _ => {} // delete_id and anything else: nothing to do
            }
        }
        if registry_done {
            // Every global has been announced: bind hello_v1, greet, and
            // sync so that the greeting is known to have come or not.
            let n = global.ok_or("the server has no hello_v1 global")?;
            let iface = CString::new(hello_v1::INTERFACE.name)?;
            let bind = [
                Arg::Uint(n),
                Arg::Str(Some(&iface)),
                Arg::Uint(1),
                Arg::NewId(HELLO),
            ];
            request(
                &mut conn,
                REGISTRY,
                &wl_registry::INTERFACE,
                wl_registry::req::BIND,
                &bind,
            )?;
            objects.insert(HELLO, &hello_v1::INTERFACE);
            let who = CString::new(name)?;
            let greet = [Arg::Str(Some(&who))];
            request(
                &mut conn,
                HELLO,
                &hello_v1::INTERFACE,
                hello_v1::req::GREET,
                &greet,
            )?;
            request(
                &mut conn,
                1,
                display,
                wl_display::req::SYNC,
                &[Arg::NewId(SECOND_SYNC)],
            )?;
            objects.insert(SECOND_SYNC, &wl_callback::INTERFACE);
        }
    }
}

/// Queues request `opcode` of `iface` to object `target`.
fn request(
    conn: &mut Connection,
    target: u32,
    iface: &'static Interface,
    opcode: u16,
    args: &[Arg<'_, BorrowedFd<'_>>],
) -> Result<(), ConnectionError> {
    conn.send(target, opcode, &iface.requests[usize::from(opcode)], args)
}
