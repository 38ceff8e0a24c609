//! A tiny Wayland server with a custom global, `hello_v1`, whose tables
//! come from `examples/hello/hello-v1.xml` through `waypass_scanner`.
//!
//! ```text
//! cargo run -p waypass-protocol --example hello_server -- /tmp/hello.sock &
//! cargo run -p waypass-protocol --example hello_client -- /tmp/hello.sock alice
//! WAYLAND_DISPLAY=/tmp/hello.sock wayland-info    # lists hello_v1
//! ```
//!
//! It answers `wl_display.sync` and `get_registry`, advertises `hello_v1`
//! as global 1, lets clients bind it, and answers each `greet(name)` with
//! `greeting("hello, <name>")`. One thread per client, blocking reads: the
//! point is the generated tables and the wire, not the event loop (see
//! waypass-server for that). Anything unexpected gets `wl_display.error`
//! with libwayland's wording, and the client is dropped.

use std::collections::HashMap;
use std::ffi::CString;
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::ExitCode;

use std::os::fd::BorrowedFd;
use waypass_protocol::protocols::wayland::{wl_callback, wl_display, wl_registry};

use waypass_protocol::{
    Arg, Connection, ConnectionError, Header, Interface, Message, NextError, Outgoing,
};

/// The generated tables of `hello_v1`.
mod hello {
    waypass_scanner::interfaces!("examples/hello/hello-v1.xml");
}
use hello::hello_v1;

/// The registry name of the one global.
const HELLO_GLOBAL: u32 = 1;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: hello_server SOCKET_PATH");
        return ExitCode::FAILURE;
    };
    let _ = std::fs::remove_file(&path); // an example: no lock file dance
    let listener = match UnixListener::bind(&path) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("hello_server: cannot listen on {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("hello_server: listening on {path}");
    for stream in listener.incoming().flatten() {
        std::thread::spawn(move || {
            if let Err(e) = serve(stream) {
                eprintln!("hello_server: client dropped: {e}");
            }
        });
    }
    ExitCode::SUCCESS
}

/// The objects one client has, by id.
type Objects = HashMap<u32, &'static Interface>;

fn serve(stream: UnixStream) -> Result<(), Box<dyn std::error::Error>> {
    let mut conn = Connection::new(stream)?;
    let mut objects = Objects::from([(1, &wl_display::INTERFACE)]);
    loop {
        match conn.recv_wait(None) {
            Ok(_) => {}
            Err(ConnectionError::Closed) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        let (incoming, outgoing) = conn.split();
        loop {
            let lookup = |h: &Header| {
                let iface = objects.get(&h.sender).ok_or(h.sender)?;
                iface.request(h.opcode, iface.version).map_err(|_| h.sender)
            };
            match incoming.next_message(lookup) {
                Ok(Some(m)) => {
                    if let Err(e) = handle(&mut objects, outgoing, m) {
                        conn.flush()?; // the wl_display.error, if one was queued
                        return Err(e);
                    }
                }
                Ok(None) => break,
                Err(NextError::Lookup(id)) => {
                    let text = format!("invalid object {id}");
                    fail(outgoing, id, wl_display::error::INVALID_OBJECT, &text)?;
                    conn.flush()?;
                    return Err(text.into());
                }
                Err(e) => return Err(e.to_string().into()),
            }
        }
        conn.flush()?;
    }
}

/// What one request does, and the events it answers with.
fn handle(
    objects: &mut Objects,
    out: &mut Outgoing,
    m: Message<'_>,
) -> Result<(), Box<dyn std::error::Error>> {
    let iface = objects[&m.sender];
    match (iface.name, m.opcode, &m.args[..]) {
        ("wl_display", wl_display::req::SYNC, [Arg::NewId(callback)]) => {
            let done = wl_callback::evt::DONE;
            send(
                out,
                *callback,
                &wl_callback::INTERFACE,
                done,
                &[Arg::Uint(0)],
            )?;
            let delete = wl_display::evt::DELETE_ID;
            send(
                out,
                1,
                &wl_display::INTERFACE,
                delete,
                &[Arg::Uint(*callback)],
            )?;
        }
        ("wl_display", wl_display::req::GET_REGISTRY, [Arg::NewId(id)]) => {
            objects.insert(*id, &wl_registry::INTERFACE);
            let name = CString::new(hello_v1::INTERFACE.name)?;
            let global = [
                Arg::Uint(HELLO_GLOBAL),
                Arg::Str(Some(&name)),
                Arg::Uint(hello_v1::INTERFACE.version),
            ];
            send(
                out,
                *id,
                &wl_registry::INTERFACE,
                wl_registry::evt::GLOBAL,
                &global,
            )?;
        }
        (
            "wl_registry",
            wl_registry::req::BIND,
            [Arg::Uint(HELLO_GLOBAL), Arg::Str(Some(name)), Arg::Uint(_), Arg::NewId(id)],
        ) if name.to_bytes() == hello_v1::INTERFACE.name.as_bytes() => {
            objects.insert(*id, &hello_v1::INTERFACE);
        }
        ("hello_v1", hello_v1::req::GREET, [Arg::Str(Some(name))]) => {
            let text = CString::new(format!("hello, {}", name.to_string_lossy()))?;
            let greeting = hello_v1::evt::GREETING;
            send(
                out,
                m.sender,
                &hello_v1::INTERFACE,
                greeting,
                &[Arg::Str(Some(&text))],
            )?;
        }
        (name, opcode, _) => {
            let text = format!("{name}@{}: unexpected request {opcode}", m.sender);
            fail(out, m.sender, wl_display::error::INVALID_METHOD, &text)?;
            return Err(text.into());
        }
    }
    Ok(())
}

/// Queues event `opcode` of `iface` from object `sender`.
fn send(
    out: &mut Outgoing,
    sender: u32,
    iface: &'static Interface,
    opcode: u16,
    args: &[Arg<'_, BorrowedFd<'_>>],
) -> Result<(), ConnectionError> {
    out.send(sender, opcode, &iface.events[usize::from(opcode)], args)
}

/// Queues `wl_display.error`; the caller flushes and drops the client.
fn fail(
    out: &mut Outgoing,
    object: u32,
    code: u32,
    text: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let text = CString::new(text)?;
    let args = [Arg::Object(object), Arg::Uint(code), Arg::Str(Some(&text))];
    send(
        out,
        1,
        &wl_display::INTERFACE,
        wl_display::evt::ERROR,
        &args,
    )?;
    Ok(())
}
