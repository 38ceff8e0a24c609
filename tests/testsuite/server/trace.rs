//! End-to-end: `WAYLAND_DEBUG=server` prints libwayland-style trace lines
//! for every message the server receives and sends.

use nix::sys::signal::Signal;
use waypass_protocol::__private::parse_trace_line;
use waypass_test_support::wlrs_client::WlClient;
use waypass_test_support::{eventually, Server};

#[test]
fn wayland_debug_server_traces_parse() {
    let mut server = Server::start_with(&[], |cmd| {
        // Only the trace on stderr: no log lines to tell apart.
        cmd.env("WAYLAND_DEBUG", "server").env("RUST_LOG", "off");
    });
    let mut client = WlClient::connect(&server.socket);
    client.get_keyboard();
    client.roundtrip();
    assert!(eventually(|| server.log_text().contains("repeat_info")));
    server.signal(Signal::SIGTERM);
    assert!(server.wait().success());

    let log = server.log_text();
    let lines: Vec<_> = log
        .lines()
        .map(|l| parse_trace_line(l).unwrap_or_else(|| panic!("not a trace line: {l:?}")))
        .collect();
    let has = |sent: bool, what: &str| {
        lines.iter().any(|l| {
            l.sent == sent
                && format!("{}@{}.{}({})", l.interface, l.id, l.message, l.args).starts_with(what)
        })
    };
    assert!(
        has(false, "wl_display@1.get_registry(new id wl_registry@"),
        "{log}"
    );
    assert!(has(true, "wl_registry@2.global(1, \"wl_seat\", "), "{log}");
    assert!(has(false, "wl_registry@2.bind(1, \"wl_seat\", "), "{log}");
    assert!(has(true, "wl_seat@3.name(\"seat0\")"), "{log}");
    assert!(
        has(false, "wl_seat@3.get_keyboard(new id wl_keyboard@"),
        "{log}"
    );
    assert!(has(true, "wl_keyboard@4.keymap(1, fd "), "{log}");
    assert!(has(true, "wl_keyboard@4.repeat_info(25, 600)"), "{log}");
    assert!(has(true, "wl_display@1.delete_id("), "{log}");
}
