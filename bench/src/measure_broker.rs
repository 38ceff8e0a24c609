//! Measurements 5 (brokered channel) and 6 (file passing over a peer
//! channel): placeholders that say why they are not measured yet.
//!
//! What it is: the place these measurements go, and an honest status line
//! for each. Both need waypass's broker extension (`waypass_broker_v1`):
//! two clients asking waypass-server for a channel, receiving the two ends
//! of a socketpair, then talking directly. The status checks whether our
//! server advertises the extension, so the report says which half is
//! missing.
//!
//! What it is not: a fake. No figure is printed until the exchange is really
//! measured. When the broker lands, each measurement becomes a side in
//! `runner::interleave` next to its raw reference (`raw::ping_pong`,
//! `raw::send_fds`), exactly as `measure_wire` does for `wl_display.sync`.

use crate::servers::{ServerKind, ServerSet};
use crate::wl_client::list_globals;

/// The global our server advertises once the broker extension exists.
const BROKER_GLOBAL: &str = "waypass_broker_v1";

/// One measurement of sections 5 and 6 and its status.
#[derive(Debug, Clone)]
pub struct BrokerItem {
    /// What would be measured.
    pub what: &'static str,
    /// What it is divided by.
    pub reference: &'static str,
    /// The status (always pending for now) and why.
    pub status: String,
}

/// The items of sections 5 and 6, each with why it is pending.
pub fn measure(servers: &ServerSet) -> Vec<BrokerItem> {
    let why = broker_status(servers);
    [
        (
            "5. ping-pong over a brokered channel",
            "raw socketpair ping-pong (target ≥ 0.95×)",
        ),
        (
            "5. time to set up a channel",
            "one wl_display.sync round trip",
        ),
        (
            "6. fds per second over a peer channel",
            "raw SCM_RIGHTS stream (target ≥ 0.9×)",
        ),
        (
            "6. a 64 MiB file handed over",
            "its bytes sent through the socket",
        ),
    ]
    .into_iter()
    .map(|(what, reference)| BrokerItem {
        what,
        reference,
        status: why.clone(),
    })
    .collect()
}

fn broker_status(servers: &ServerSet) -> String {
    let server = match servers.start(ServerKind::Ours) {
        Ok(server) => server,
        Err(why) => return why,
    };
    match list_globals(server.socket()) {
        Ok(globals) if globals.iter().any(|g| g == BROKER_GLOBAL) => format!(
            "pending: waypass-server advertises {BROKER_GLOBAL}, but the bench's broker \
             client is not written yet"
        ),
        Ok(_) => format!("pending: waypass-server does not advertise {BROKER_GLOBAL} yet"),
        Err(e) => format!("pending: cannot list waypass-server's globals ({e})"),
    }
}
