//! `waypass-client listen NAME`: own a name and print what peers send.
//!
//! What it is: the loop that registers the name, accepts every peer the
//! server hands over, and polls the server connection, all the peer
//! channels and the file workers at once. Each text becomes one line
//! `from <peer>: <text>`, each file one line `file from <peer>: <name>
//! <size> bytes sha256=<hex>` (the contents read through the received fd),
//! optionally saved under `--save-dir`; each is acked, and every offer that
//! is refused or fails is answered with a refusal and its reason. What it
//! is not: a sender (see `send`), one peer's turn (see `serve`), the
//! bounds on channels (see `limits`), the file reading (see `save`, run by
//! `workers`), or the output format (see `report`).
//!
//! # Implementation notes
//!
//! - **Nothing a peer sends ends `listen`.** A peer that breaks the
//!   protocol is dropped; an offer that fails (a FIFO, a file over
//!   `--max-file-size`, an unsafe name, a full disk, a name taken 100
//!   times) is refused to that peer; the name and the server connection
//!   stay. `SIGXFSZ` is blocked so that a file size limit is an `EFBIG`
//!   refusal, not the end of the process.
//! - **Fairness.** One `poll` over the server socket, the workers' wake-up
//!   socket and every peer socket. A readable peer gets at most
//!   [`MESSAGES_PER_TURN`] messages per round; if more are buffered it is
//!   served again in the next round, after everyone else. A peer whose
//!   replies (acks) the socket will not take is not read until it reads
//!   them: it cannot make us queue without bound.
//! - **Files off the loop.** A file is read by one of the [`WORKERS`]
//!   threads; its peer is not read meanwhile (so its messages stay in
//!   order, and each peer has at most one file in work), while every other
//!   peer is served. The worker's progress is sent to the peer as
//!   `progress(serial, done)`, so that its ack timeout does not fire.
//! - **Who.** A peer whose uid (as the server read it with `SO_PEERCRED`)
//!   is not ours is refused on its first message, unless `--any-uid`.
//! - **How many.** A new channel is admitted only within the table of
//!   `limits`: in all, per pid and per other uid, sized so that the
//!   most each channel may hold, plus a reserve for the server connection,
//!   fits under `RLIMIT_NOFILE`; past it the channel is closed, with a log
//!   line. A channel that holds more than [`limits::MAX_QUEUED_FDS`] fds no message
//!   has taken after its turn is dropped. So no number of peers can take
//!   the fds the server connection needs, and the name stays ours.
//! - If the server goes away the channels still work (it is out of their
//!   path): listening goes on with the peers there are, and ends with the
//!   server's error once the last one has gone.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use indicatif::ProgressBar;
use log::{debug, warn};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use waypass_client::{Broker, BrokerError, Credentials, SessionError};

use super::report::{PeerInfo, Report};
use super::save_dir::SaveDir;
use super::story::{fd_number, fd_target, open_broker, Common, Out};
use super::workers::{Update, Workers, WORKERS};
use super::CliError;
use limits::{Admission, Limits};
use peer::{refuse, send_progress, warn_peer, Connected};

mod limits;
mod peer;
mod serve;

/// The most messages handled for one peer in one round of the loop.
const MESSAGES_PER_TURN: usize = 32;

/// Files at least this large get a progress bar (on a terminal).
const PROGRESS_BAR_MIN: u64 = 16 << 20;

/// Arguments of `listen`.
#[derive(Debug, Args)]
pub(super) struct ListenArgs {
    /// The name to own (1 to 64 bytes of A-Z a-z 0-9 . _ -).
    name: String,

    /// Save received files in this directory, created (mode 0700) if
    /// missing. Files are saved mode 0600 (or less, as the sender's) under
    /// their own name, never overwriting: name.1 ... name.99 are tried.
    #[arg(long, value_name = "DIR")]
    save_dir: Option<PathBuf>,

    /// Exit after answering this many texts and files, acked or refused
    /// (a peer of another uid, refused as it connects, does not count):
    /// exit 0 if all were acked, else 1.
    #[arg(long, value_name = "N")]
    count: Option<u64>,

    /// Refuse offered files larger than this many bytes, before reading any
    /// (1 GiB by default: what one offer may cost in disk and reading time).
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 30)]
    max_file_size: u64,

    /// Accept peers of any user (by default a peer whose uid is not ours is
    /// refused).
    #[arg(long)]
    any_uid: bool,

    /// Print one JSON object per line for each message, file and refusal
    /// (see docs/json.md).
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    pub common: Common,
}

/// What `listen` carries from round to round.
struct Listener<'a> {
    args: &'a ListenArgs,
    out: &'a Out,
    report: Report<'a>,
    workers: Workers,
    peers: Vec<Connected>,
    next_id: u64,
    /// Texts and files answered (acked or refused), for `--count`.
    handled: u64,
    /// How many of those were refused.
    refused: u64,
    uid: u32,
    /// The channels open, charged to their pid and uid.
    admission: Admission,
    /// Dropped peers whose file a worker still reads: their charge stays
    /// until it is done.
    orphans: HashMap<u64, Credentials>,
    bars: HashMap<u64, ProgressBar>,
    show_progress: bool,
}

/// Runs `listen`.
pub(super) fn listen(socket: Option<&str>, args: &ListenArgs) -> Result<(), CliError> {
    // Checked before the name is taken: a bad directory is a start-up error.
    let dir = match &args.save_dir {
        Some(path) => Some(Arc::new(SaveDir::open(path).map_err(CliError::SaveDir)?)),
        None => None,
    };
    // A file size limit (RLIMIT_FSIZE) makes a write fail with EFBIG
    // instead of killing us. Blocked before the workers start: they inherit it.
    SigSet::from(Signal::SIGXFSZ)
        .thread_block()
        .map_err(|e| CliError::Poll(e.into()))?;
    let out = Out::new(&args.common);
    let workers = Workers::start(dir.clone()).map_err(CliError::Poll)?;
    let mut broker = open_broker(socket, &args.common, &out)?;
    broker.register_and_wait(&args.name, args.common.timeout())?;
    // Every fd of ours is open by now: what is left is for channels.
    let uid = nix::unistd::geteuid().as_raw();
    let admission = Admission::new(Limits::for_process(WORKERS), uid);
    let mut l = Listener {
        args,
        out: &out,
        report: Report::new(&out, args.json),
        workers,
        peers: Vec::new(),
        next_id: 0,
        handled: 0,
        refused: 0,
        uid,
        admission,
        orphans: HashMap::new(),
        bars: HashMap::new(),
        show_progress: dir.is_some() && !args.json && std::io::stderr().is_terminal(),
    };
    l.report.registered(&args.name)?;
    l.run(Some(broker))?;
    for c in &mut l.peers {
        if let Err(e) = c.peer.channel.flush(Some(args.common.timeout())) {
            warn!(
                "could not send the last acks to {}: {}",
                c.info.label,
                waypass_client::chain_to_string(&e)
            );
        }
    }
    match args.count {
        Some(count) if l.refused > 0 => Err(CliError::Refused {
            count,
            refused: l.refused,
        }),
        _ => Ok(()),
    }
}

impl Listener<'_> {
    fn done(&self) -> bool {
        self.args.count.is_some_and(|c| self.handled >= c)
    }

    /// The loop, until `--count` is reached or nothing is left to serve.
    fn run(&mut self, mut server: Option<Broker>) -> Result<(), CliError> {
        let mut server_error = None;
        while !self.done() {
            if server.is_none() && self.peers.is_empty() && self.bars.is_empty() {
                return Err(server_error
                    .unwrap_or(BrokerError::Session(SessionError::Closed))
                    .into());
            }
            if let Some(broker) = server.as_mut() {
                // Peers may already wait in the queue (they can arrive with
                // the answer to register); take them before sleeping in poll.
                self.take_peers(broker)?;
            }
            let (server_ready, wake, ready) = self.wait(server.as_ref())?;
            if let (true, Some(broker)) = (server_ready, server.as_mut()) {
                match broker.dispatch(Some(Instant::now())) {
                    Ok(_) => self.take_peers(broker)?,
                    Err(e) => {
                        warn!("the server connection ended: {e}; serving the channels there are");
                        server_error = Some(e);
                        server = None;
                    }
                }
            }
            if wake {
                for update in self.workers.take() {
                    self.on_update(update)?;
                }
            }
            let mut keep = Vec::with_capacity(self.peers.len());
            for (i, is_ready) in ready.into_iter().enumerate() {
                keep.push(!is_ready || self.serve_bounded(i)?);
            }
            self.drop_peers(&keep);
        }
        Ok(())
    }

    /// Drops the peers whose `keep` is false, releasing their charge (once
    /// their file is read, if a worker still reads it).
    fn drop_peers(&mut self, keep: &[bool]) {
        for (at, c) in std::mem::take(&mut self.peers).into_iter().enumerate() {
            if keep.get(at).copied().unwrap_or(true) {
                self.peers.push(c);
            } else if c.busy.is_some() {
                self.orphans.insert(c.id, c.peer.credentials);
            } else {
                self.admission.release(&c.peer.credentials);
            }
        }
    }

    /// Polls the server (if still there), the workers and every peer that
    /// can be served; returns which are ready.
    fn wait(&self, server: Option<&Broker>) -> Result<(bool, bool, Vec<bool>), CliError> {
        let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(self.peers.len() + 2);
        fds.push(PollFd::new(self.workers.wake_fd(), PollFlags::POLLIN));
        if let Some(broker) = server {
            fds.push(PollFd::new(broker.as_fd(), PollFlags::POLLIN));
        }
        let mut timeout = PollTimeout::NONE;
        // The peers polled: not one whose file is being read (its hang-up
        // would wake poll again and again); it is served once its file is.
        let mut polled = Vec::with_capacity(self.peers.len());
        for (i, c) in self.peers.iter().enumerate() {
            if c.busy.is_some() {
                continue;
            }
            let events = if c.blocked {
                PollFlags::POLLOUT
            } else {
                PollFlags::POLLIN
            };
            if c.more && !c.blocked {
                timeout = PollTimeout::ZERO;
            }
            fds.push(PollFd::new(c.peer.channel.as_fd(), events));
            polled.push(i);
        }
        loop {
            match poll(&mut fds, timeout) {
                Ok(_) => break,
                // A signal: poll again.
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(CliError::Poll(e.into())),
            }
        }
        let is_ready = |fd: &PollFd<'_>| fd.revents().is_some_and(|r| !r.is_empty());
        let wake = is_ready(&fds[0]);
        let offset = 1 + usize::from(server.is_some());
        let server_ready = server.is_some() && is_ready(&fds[1]);
        let mut ready = vec![false; self.peers.len()];
        for (fd, &i) in fds[offset..].iter().zip(&polled) {
            let c = &self.peers[i];
            ready[i] = is_ready(fd) || (c.more && !c.blocked);
        }
        Ok((server_ready, wake, ready))
    }

    /// Takes the peers the server has handed over.
    fn take_peers(&mut self, broker: &mut Broker) -> Result<(), CliError> {
        while let Some(incoming) = broker.take_peer() {
            let peer = incoming.peer;
            let info = PeerInfo::of(&peer);
            let label = &info.label;
            self.out.story(|| {
                let fd = peer.channel.as_fd();
                format!(
                    "got {} = one end of a socketpair ({}) from the server, peer {label} ({})",
                    fd_number(fd),
                    fd_target(fd),
                    peer.credentials
                )
            })?;
            debug!("peer {label} connected ({})", peer.credentials);
            if self.admission.admit(&peer.credentials).is_err() {
                // Logged by admit; closing the channel is the answer.
                continue;
            }
            let foreign = !self.args.any_uid && peer.credentials.uid != self.uid;
            if foreign {
                let reason = format!(
                    "uid {} is not the listener's ({}); the listener accepts other users \
                     only with --any-uid",
                    peer.credentials.uid, self.uid
                );
                self.report.refused(&info, None, None, &reason)?;
            }
            self.peers.push(Connected {
                id: self.next_id,
                peer,
                info,
                foreign,
                busy: None,
                busy_story: String::new(),
                more: false,
                blocked: false,
            });
            self.next_id += 1;
        }
        Ok(())
    }

    /// What a worker says: progress, or a file done.
    fn on_update(&mut self, update: Update) -> Result<(), CliError> {
        match update {
            Update::Progress { peer, serial, done } => {
                if let Some(bar) = self.bars.get(&peer) {
                    bar.set_position(done);
                }
                if let Some(c) = self.peers.iter_mut().find(|c| c.id == peer) {
                    send_progress(c, serial, done);
                }
            }
            Update::Done {
                peer,
                name,
                serial,
                size,
                result,
            } => {
                if let Some(bar) = self.bars.remove(&peer) {
                    bar.finish_and_clear();
                }
                let Some(at) = self.peers.iter().position(|c| c.id == peer) else {
                    // Dropped while its file was read: its charge ends now.
                    if let Some(who) = self.orphans.remove(&peer) {
                        self.admission.release(&who);
                    }
                    return Ok(());
                };
                let c = &mut self.peers[at];
                c.busy = None;
                // Its next messages may be buffered already.
                c.more = true;
                match result {
                    Ok(received) => {
                        let story = std::mem::take(&mut c.busy_story);
                        self.out.story(|| {
                            format!(
                                "{story}, read {size} bytes through it, sha256={}",
                                received.sha256
                            )
                        })?;
                        self.report.file(
                            &c.info,
                            serial,
                            &name,
                            size,
                            &received.sha256,
                            received.saved_as.as_deref(),
                        )?;
                        self.handled += 1;
                        if let Err(e) = c.peer.channel.ack(serial) {
                            warn_peer(self.out, &c.info.label, "its ack is lost", &e);
                        }
                    }
                    Err(reason) => {
                        self.report
                            .refused(&c.info, Some(serial), Some(&name), &reason.0)?;
                        refuse(c, serial, &reason.0);
                        self.handled += 1;
                        self.refused += 1;
                    }
                }
            }
        }
        Ok(())
    }
}
