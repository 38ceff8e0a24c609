//! [`SharedBuffers`]: the buffers a single-threaded server lends to each
//! connection it serves, so that a wakeup allocates nothing.
//!
//! What it is: the receive buffer and spare output chunks, and the rule for
//! lending them, which `Connection::borrow_buffers` and
//! `Connection::return_buffers` do. What it is not: a pool shared across
//! threads; one event loop owns it.

use super::outgoing::SharedChunks;

/// Buffers that a single-threaded server lends to each connection it
/// serves, in turn: one receive buffer and a few output chunks.
///
/// A connection frees its buffers when it has nothing buffered, so that an
/// idle client costs no heap (`Connection::heap_bytes` is 0). Without
/// lending, each wakeup would allocate and zero a 4 KiB receive buffer and a
/// 4 KiB output chunk, and free both. With it, a wakeup borrows them
/// ([`Connection::borrow_buffers`](super::Connection::borrow_buffers)),
/// receives, decodes and flushes, and gives them back
/// ([`Connection::return_buffers`](super::Connection::return_buffers)); only a connection left
/// with a message half received, or output the socket would not take,
/// keeps what that needs.
///
/// ```
/// use std::io::Write;
/// use std::os::unix::net::UnixStream;
/// use waypass_protocol::__private::SharedBuffers;
/// use waypass_protocol::{Connection, Recv};
///
/// let mut shared = SharedBuffers::default();
/// let (mut peer, ours) = UnixStream::pair()?;
/// let mut conn = Connection::new(ours)?;
/// peer.write_all(&[1, 0, 0, 0])?; // half a header
/// conn.borrow_buffers(&mut shared);
/// assert!(matches!(conn.recv()?, Recv::Data(4)));
/// conn.return_buffers(&mut shared);
/// assert_eq!(conn.heap_bytes(), 4); // it keeps its 4 bytes, nothing more
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
pub struct SharedBuffers {
    pub(super) input: Vec<u8>,
    pub(super) chunks: SharedChunks,
}
