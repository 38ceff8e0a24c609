//! The `hello_v1` server written with waypass: one `Global`, registered
//! with the server's builder. Usage: `hello-server SOCKET`.

use std::ffi::CString;

use waypass_protocol::ObjectId;
use waypass_server::{Global, GlobalCx, GlobalError, ServerBuilder, ServerConfig};

mod protocol {
    waypass_protocol::interfaces!("protocol/hello-v1.xml");
}
use protocol::hello_v1::{self, HelloV1};

struct Greeter;

impl Global for Greeter {
    type Interface = HelloV1;

    fn request(
        &mut self,
        cx: &mut GlobalCx<'_, '_>,
        hello: ObjectId<HelloV1>,
        request: hello_v1::Request<'_>,
    ) -> Result<(), GlobalError> {
        match request {
            hello_v1::Request::Greet { name } => {
                let text = format!("hello, {}!", name.to_string_lossy());
                let text = CString::new(text).expect("no NUL: the name was a C string");
                cx.send(hello, hello_v1::Event::Greeting { text: &text })
            }
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = ServerConfig::default();
    config.socket = Some(
        std::env::args()
            .nth(1)
            .ok_or("usage: hello-server SOCKET")?,
    );
    let server = ServerBuilder::new(config)
        .global(Greeter)
        .handle_signals(true)
        .build()?;
    println!("listening");
    server.run()?;
    Ok(())
}
