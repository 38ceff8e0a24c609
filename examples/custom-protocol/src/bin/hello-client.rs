//! The `hello_v1` client written with waypass: bind the global, send
//! `greet`, read the `greeting`. Usage: `hello-client SOCKET NAME`.

use std::ffi::CString;

use waypass_client::Session;

mod protocol {
    waypass_protocol::interfaces!("protocol/hello-v1.xml");
}
use protocol::hello_v1::{self, HelloV1};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: hello-client SOCKET NAME")?;
    let name = CString::new(args.next().unwrap_or_default())?;
    let mut session = Session::connect_path(path.as_ref())?;
    let hello = session.bind_global::<HelloV1>(1)?;
    session.send(hello, hello_v1::Request::Greet { name: &name })?;
    let mut greeting = session.next_event_from(hello)?;
    match greeting.decode::<HelloV1>()? {
        hello_v1::Event::Greeting { text } => println!("{}", text.to_string_lossy()),
    }
    Ok(())
}
