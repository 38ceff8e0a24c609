//! One wakeup of one client, without the event loop: one `recv`, every
//! complete message dispatched, and one flush; and what happens when the
//! client must go (its error posted, its broker names and clipboard
//! objects released).
//!
//! What it is: the code the event loop's client callback
//! ([`crate::runtime::server`]) and the fuzz harness (`crate::fuzzing`)
//! share, so that the harness drives exactly what the server runs. What it
//! is not: the client table or other clients' output (that needs the
//! loop's `Dispatcher`s, in [`crate::runtime::server`]).

use std::fmt;

use log::{debug, error, info, warn};
use waypass_protocol::{error_chain, ConnectionError, Flush, Recv};

use crate::proto::broker::Broker;
use crate::proto::clipboard::Clipboard;
use crate::proto::ctx::{post_error, ProtocolError, Shared, Stop};
use crate::proto::dispatch::dispatch_pending;
use crate::state::Client;

/// One readable wakeup's work on `client`: one `recv`, then every complete
/// message dispatched. On a [`Stop`] the error is posted and flushed (best
/// effort) and the reason to disconnect returned. The caller still hands
/// over [`Broker::take_deliveries`] and flushes.
pub fn serve_input(
    client: &mut Client,
    shared: &Shared,
    broker: &mut Broker,
    clipboard: &mut Clipboard,
) -> Result<Recv, Disconnect> {
    // Fds it was sent and has read since no longer count against it.
    let unread = client.refresh_in_flight();
    broker.owner_unread(client.key, unread);
    let received = client.conn.recv().map_err(Disconnect::Recv)?;
    // `WouldBlock` is a spurious wakeup: nothing new, but maybe something
    // to flush; dispatching finds nothing complete and returns at once.
    dispatch_pending(client, shared, broker, clipboard)
        .map_err(|stop| post_stop(client, shared, stop))?;
    Ok(received)
}

/// Posts the error a [`Stop`] carries, if any, flushes once (best effort:
/// a client that does not read loses it), and says why the client goes.
pub fn post_stop(client: &mut Client, shared: &Shared, stop: Stop) -> Disconnect {
    let (err, reason) = match stop {
        Stop::Protocol(err) => (err.clone(), Disconnect::Protocol(err)),
        Stop::Server(err) => {
            error!("cannot serve client ({}): {}", client.who(), err.message);
            (err, Disconnect::Server)
        }
        Stop::Queue(e) => return Disconnect::Queue(e),
    };
    if post_error(client, shared, &err).is_ok() {
        let _ = client.conn.flush();
    }
    reason
}

/// Why a client went away.
#[derive(Debug)]
pub enum Disconnect {
    /// Receiving failed, or the client hung up ([`ConnectionError::Closed`]).
    Recv(ConnectionError),
    /// Sending failed, or the client hung up.
    Send(ConnectionError),
    /// Its output could not be queued (over the cap: it does not read).
    Queue(ConnectionError),
    /// It broke the protocol; this error was posted.
    Protocol(ProtocolError),
    /// The server could not serve it (an error was posted and logged).
    Server,
}

// `Display` already prints the cause's chain (a disconnect is logged as one
// line), so `source()` stays `None`: nothing is printed twice.
impl std::error::Error for Disconnect {}

impl fmt::Display for Disconnect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // A hang-up is the normal way to leave.
            Disconnect::Recv(ConnectionError::Closed)
            | Disconnect::Send(ConnectionError::Closed) => f.write_str("hung up"),
            Disconnect::Recv(e) | Disconnect::Send(e) => f.write_str(&error_chain(e)),
            Disconnect::Queue(e) => write!(f, "cannot queue output: {}", error_chain(e)),
            Disconnect::Protocol(err) => write!(f, "protocol {err}"),
            Disconnect::Server => f.write_str("the server could not serve it"),
        }
    }
}

/// Logs why a client went: a hang-up is `info`, anything else `warn`.
pub fn log_disconnect(who: &str, reason: &Disconnect) {
    match reason {
        Disconnect::Recv(ConnectionError::Closed) | Disconnect::Send(ConnectionError::Closed) => {
            info!("client disconnected ({who})")
        }
        Disconnect::Recv(_) | Disconnect::Send(_) => {
            warn!("client disconnected ({who}): {reason}")
        }
        _ => warn!("disconnecting client ({who}): {reason}"),
    }
}

/// One flush. `Ok(true)` means output is left and the source must also
/// wait for writability.
pub fn flush(client: &mut Client) -> Result<bool, ConnectionError> {
    match client.conn.flush()? {
        Flush::Done => Ok(false),
        Flush::WouldBlock => {
            debug!("client ({}) is not reading; waiting to write", client.who());
            Ok(true)
        }
    }
}

/// Releases what a client that has gone held server-wide: its broker names
/// and its clipboard sources, devices and offers (which may clear a
/// selection: the caller delivers or drops the clipboard's output).
pub fn release(client: &Client, broker: &mut Broker, clipboard: &mut Clipboard) {
    broker.release_all(client.key, &client.session.names);
    clipboard.client_gone(client.key);
}
