//! Serving one peer of `listen` for one turn: reading at most
//! [`MESSAGES_PER_TURN`] of its messages, answering texts, checking file
//! offers and handing them to a worker, and holding the channel to what it
//! may keep.
//!
//! What it is: [`Listener::serve_bounded`] and what it calls. What it is
//! not: the loop that chooses whom to serve (`listen`), nor the reading of
//! files (`workers`, `save`).

use std::os::fd::AsFd;
use std::time::Duration;

use log::debug;
use waypass_client::{ChannelError, PeerMessage};

use super::super::save::check_offer;
use super::super::story::{fd_number, file_id};
use super::super::workers::Job;
use super::super::CliError;
use super::limits::MAX_QUEUED_FDS;
use super::peer::{flushed, progress_bar, refuse, serial_of, warn_peer};
use super::{Listener, MESSAGES_PER_TURN, PROGRESS_BAR_MIN};

impl Listener<'_> {
    /// [`Listener::serve`], then holds the channel to its charge: one that
    /// holds more than [`MAX_QUEUED_FDS`] fds that no message has taken is
    /// dropped (a well-behaved peer never leaves that many).
    pub(super) fn serve_bounded(&mut self, i: usize) -> Result<bool, CliError> {
        if !self.serve(i)? {
            return Ok(false);
        }
        let c = &mut self.peers[i];
        let held = c.peer.channel.held_fds();
        if held > MAX_QUEUED_FDS {
            self.out.warn(format_args!(
                "peer {}: holds {held} fds that no message has taken (at most \
                 {MAX_QUEUED_FDS}); dropping the channel",
                c.info.label
            ));
            return Ok(false);
        }
        Ok(true)
    }

    /// Serves peer `i`: flushes what waits for it, then handles at most
    /// [`MESSAGES_PER_TURN`] of its messages. Returns false when the peer
    /// is gone (closed, or dropped for an error).
    fn serve(&mut self, i: usize) -> Result<bool, CliError> {
        let c = &mut self.peers[i];
        if c.blocked && !flushed(c) {
            return Ok(true);
        }
        c.blocked = false;
        c.more = false;
        for _ in 0..MESSAGES_PER_TURN {
            if self.done() {
                return Ok(true);
            }
            let c = &mut self.peers[i];
            let message = match c.peer.channel.recv(Some(Duration::ZERO)) {
                Ok(Some(m)) => m,
                Ok(None) => {
                    debug!("{} closed the channel", c.info.label);
                    return Ok(false);
                }
                // No whole message left for now.
                Err(ChannelError::Timeout) => return Ok(self.after_turn(i)),
                Err(e) => {
                    warn_peer(self.out, &c.info.label, "dropping the channel", &e);
                    return Ok(false);
                }
            };
            if c.foreign {
                // Tell it why, once, and hang up.
                if let Some(serial) = serial_of(&message) {
                    refuse(
                        c,
                        serial,
                        "the listener accepts only its own user (see --any-uid)",
                    );
                    let _ = c.peer.channel.flush(Some(Duration::ZERO));
                }
                return Ok(false);
            }
            match message {
                PeerMessage::Text { serial, text } => {
                    self.report.text(&c.info, serial, &text)?;
                    self.handled += 1;
                    if let Err(e) = c.peer.channel.ack(serial) {
                        warn_peer(self.out, &c.info.label, "dropping the channel", &e);
                        return Ok(false);
                    }
                }
                PeerMessage::File(offer) => {
                    let serial = offer.serial;
                    match check_offer(&offer, self.args.max_file_size) {
                        Ok(checked) => {
                            if self.args.common.story {
                                let fd = offer.fd.as_fd();
                                c.busy_story = format!(
                                    "received {} = the sender's file ({})",
                                    fd_number(fd),
                                    file_id(fd)
                                );
                            }
                            c.busy = Some(serial);
                            if self.show_progress && offer.size >= PROGRESS_BAR_MIN {
                                self.bars.insert(c.id, progress_bar(offer.size));
                            }
                            let peer = c.id;
                            self.workers.submit(Job {
                                peer,
                                offer,
                                checked,
                            });
                            return Ok(true);
                        }
                        Err(reason) => {
                            self.report.refused(
                                &c.info,
                                Some(serial),
                                Some(&offer.name),
                                &reason.0,
                            )?;
                            refuse(c, serial, &reason.0);
                            self.handled += 1;
                            self.refused += 1;
                        }
                    }
                }
                _ => {}
            }
        }
        // Turn over: come back after the others.
        self.peers[i].more = true;
        Ok(self.after_turn(i))
    }

    /// After a turn: are our replies stuck in its socket?
    fn after_turn(&mut self, i: usize) -> bool {
        let c = &mut self.peers[i];
        c.blocked = !flushed(c);
        true
    }
}
