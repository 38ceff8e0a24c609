//! The server on the event loop: each client's calloop registration, and
//! what the loop does when a client's socket is ready, at the end of each
//! loop pass, on a keymap reload and at shutdown.
//!
//! This module is the calloop side only. The client table and everything
//! a wakeup does live in [`crate::runtime::core`]; this module registers
//! each client's socket ([`crate::runtime::source`]), hands its events to
//! the core, and applies what the core answers: watch for writability,
//! stop watching, or check a cut-off client again later. It does not
//! decode requests, accept connections ([`crate::runtime::accept`]),
//! handle signals ([`crate::runtime::signals`]) or start children
//! ([`crate::runtime::spawn`]); it registers a started child's socket and
//! the pidfd that tells its exit.
//!
//! # Implementation notes
//!
//! - **Write interest only while blocked.** A flush that returns
//!   `WouldBlock` switches the source to `READ | WRITE`; the next flush that
//!   drains the queue switches it back.
//! - **The end of a pass** ([`State::end_of_pass`], calloop's per-dispatch
//!   callback) announces the selections that changed, flushes the clients
//!   that others queued output for, and cuts off the condemned: once per
//!   pass, however many requests the pass served.
//! - **Cut-off clients** (with fds still in flight) stay registered for
//!   reading, so that their hang-up is seen, and a timer checks them again
//!   with a back-off from [`CUT_OFF_FIRST_CHECK`] to [`CUT_OFF_LAST_CHECK`].

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::Duration;

use calloop::generic::Generic;
use calloop::timer::{TimeoutAction, Timer};
use calloop::{
    Dispatcher, Interest, LoopHandle, LoopSignal, Mode, PostAction, Readiness, RegistrationToken,
};
use log::{error, info, warn};
use waypass_protocol::{error_chain, Credentials};

use crate::keymap::{Keymap, KeymapSource};
use crate::persist::{JobId, Watch};
use crate::runtime::core::{Core, Next};
use crate::runtime::source::ClientSource;
use crate::runtime::spawn::{self, Children, SpawnError};
use crate::state::{peer_credentials, ClientKey};

/// The first look at a cut-off client, after it was cut off.
pub const CUT_OFF_FIRST_CHECK: Duration = Duration::from_millis(100);
/// The longest wait between two looks at a cut-off client.
pub const CUT_OFF_LAST_CHECK: Duration = Duration::from_secs(10);

/// A client as the loop sees it: its source and registration.
struct Registration {
    dispatcher: Dispatcher<'static, ClientSource, State>,
    token: RegistrationToken,
}

/// Everything the event loop's callbacks share.
pub struct State {
    /// The server without the loop.
    pub core: Core,
    /// The `--spawn` children still running.
    pub children: Children,
    /// Where the keymap comes from, for reloads.
    keymap_source: KeymapSource,
    registrations: HashMap<ClientKey, Registration>,
    /// The watches of kept selections, by job.
    jobs: HashMap<JobId, RegistrationToken>,
    handle: LoopHandle<'static, State>,
    stop: LoopSignal,
    /// The listening socket's source, while it is registered.
    pub listener_token: Option<RegistrationToken>,
}

impl State {
    /// A server with no clients yet.
    pub fn new(
        core: Core,
        keymap_source: KeymapSource,
        handle: LoopHandle<'static, State>,
        stop: LoopSignal,
    ) -> State {
        State {
            core,
            children: Children::default(),
            keymap_source,
            registrations: HashMap::new(),
            jobs: HashMap::new(),
            handle,
            stop,
            listener_token: None,
        }
    }

    /// The loop handle, for sources that need to (re)arm others.
    pub fn handle(&self) -> &LoopHandle<'static, State> {
        &self.handle
    }

    /// Takes in a newly accepted connection.
    pub fn add_client(&mut self, stream: UnixStream) {
        let creds = peer_credentials(&stream);
        self.admit(stream, creds);
    }

    /// Starts `/bin/sh -c command` as a client over a socketpair, and
    /// watches for its exit.
    pub fn spawn_child(&mut self, command: &str) -> Result<(), SpawnError> {
        let child = spawn::spawn_client(command)?;
        let pid = child.creds.pid;
        self.children.started(pid, command);
        if let Some(exited) = child.exited {
            self.watch_exit(pid, exited);
        }
        self.add_spawned_client(child.stream, child.creds);
        Ok(())
    }

    /// Reaps child `pid` when its pidfd `exited` becomes readable: with or
    /// without signal handling, the server sees its own children exit.
    fn watch_exit(&self, pid: i32, exited: OwnedFd) {
        let source = Generic::new(exited, Interest::READ, Mode::Level);
        let inserted = self.handle.insert_source(source, move |_, _, state| {
            state.reap_children();
            // Dropping the source closes the pidfd.
            Ok(if state.children.is_running(pid) {
                PostAction::Continue
            } else {
                PostAction::Remove
            })
        });
        if let Err(e) = inserted {
            warn!("cannot watch child {pid}'s exit: {}", e.error);
        }
    }

    /// Takes in the server's end of a spawned child's socketpair, with the
    /// child's credentials (`SO_PEERCRED` would name the server).
    fn add_spawned_client(&mut self, stream: UnixStream, creds: Credentials) {
        self.admit(stream, Some(creds));
    }

    fn admit(&mut self, stream: UnixStream, creds: Option<Credentials>) {
        let (key, socket) = match self.core.admit(stream, creds) {
            Ok(admitted) => admitted,
            Err(e) => return warn!("cannot take a new client: {e}"),
        };
        let dispatcher = Dispatcher::new(ClientSource::new(socket), move |readiness, _, state| {
            State::client_ready(state, key, readiness)
        });
        match self.handle.register_dispatcher(dispatcher.clone()) {
            Ok(token) => {
                if let Some(client) = self.core.clients.get_mut(key) {
                    info!("client connected ({})", client.who());
                }
                self.registrations
                    .insert(key, Registration { dispatcher, token });
            }
            Err(e) => {
                warn!("cannot watch a new client: {e}");
                self.core.close_one(key);
            }
        }
    }

    /// A client's socket is ready: its wakeup, in the core.
    fn client_ready(&mut self, key: ClientKey, readiness: Readiness) -> Next {
        let next = self.core.serve(key, readiness.readable || readiness.error);
        match next {
            Next::Close => {
                self.registrations.remove(&key);
            }
            Next::CutOff => self.check_later(key, CUT_OFF_FIRST_CHECK),
            Next::Watch { .. } => {}
        }
        next
    }

    /// The end of a loop pass (calloop's per-dispatch callback): in the
    /// common pass, a few loads ([`Core::pass_is_quiet`]).
    #[inline]
    pub fn end_of_pass(&mut self) {
        if !self.core.pass_is_quiet() {
            self.end_of_busy_pass();
        }
    }

    /// [`State::end_of_pass`] when others have output, a selection
    /// changed, a client is condemned, or a kept selection's watches
    /// changed. Out of line: the common pass never comes here.
    #[inline(never)]
    fn end_of_busy_pass(&mut self) {
        let changes = self.core.end_of_pass();
        if !changes.is_empty() {
            self.apply(changes);
        }
        if self.core.clipboard.persist.jobs().has_changes() {
            self.watch_jobs();
        }
    }

    /// Registers and removes the watches of kept selections
    /// (`--persist`) that the core added and ended this pass.
    fn watch_jobs(&mut self) {
        let (added, ended) = self.core.clipboard.persist.jobs().take();
        for job in ended {
            if let Some(token) = self.jobs.remove(&job) {
                self.handle.remove(token);
            }
        }
        for (job, watch) in added {
            let inserted = match watch {
                Watch::Readable(fd) => self.watch_fd(job, fd, Interest::READ),
                Watch::Writable(fd) => self.watch_fd(job, fd, Interest::WRITE),
                Watch::Timeout(after) => self
                    .handle
                    .insert_source(Timer::from_duration(after), move |_, _, state| {
                        state.jobs.remove(&job);
                        state.core.job_ready(job);
                        TimeoutAction::Drop
                    })
                    .map_err(|e| e.error),
            };
            match inserted {
                Ok(token) => {
                    self.jobs.insert(job, token);
                }
                // The job waits for nothing now: its fds close with it
                // (the copier sees EPIPE, the paster EOF).
                Err(e) => {
                    error!("cannot watch a kept selection's pipe: {e}");
                    self.core.job_failed(job);
                }
            }
        }
    }

    fn watch_fd(
        &self,
        job: JobId,
        fd: Rc<OwnedFd>,
        interest: Interest,
    ) -> Result<RegistrationToken, calloop::Error> {
        let source = Generic::new(fd, interest, Mode::Level);
        self.handle
            .insert_source(source, move |_, _, state| {
                if state.core.job_ready(job) {
                    return Ok(PostAction::Continue);
                }
                state.jobs.remove(&job);
                Ok(PostAction::Remove)
            })
            .map_err(|e| e.error)
    }

    /// Applies what the core says of clients outside their own callback.
    fn apply(&mut self, changes: Vec<(ClientKey, Next)>) {
        for (key, next) in changes {
            let Some(registration) = self.registrations.get(&key) else {
                continue;
            };
            match next {
                Next::Close => {
                    let token = registration.token;
                    self.registrations.remove(&key);
                    self.handle.remove(token);
                }
                Next::Watch { writable } => self.set_writable(key, writable),
                Next::CutOff => {
                    self.set_writable(key, false);
                    self.check_later(key, CUT_OFF_FIRST_CHECK);
                }
            }
        }
    }

    /// Watches client `key` for writability too, or not.
    fn set_writable(&self, key: ClientKey, writable: bool) {
        let Some(registration) = self.registrations.get(&key) else {
            return;
        };
        let changed = registration
            .dispatcher
            .as_source_mut()
            .set_interest(writable);
        if changed {
            if let Err(e) = self.handle.update(&registration.token) {
                warn!("cannot update client registration: {e}");
            }
        }
    }

    /// Looks at cut-off client `key` again after `delay`, then less and
    /// less often, until it has gone.
    fn check_later(&self, key: ClientKey, delay: Duration) {
        let mut next_delay = delay;
        let timer = Timer::from_duration(delay);
        let inserted = self.handle.insert_source(timer, move |_, _, state| {
            match state.core.check_cut_off(key, false) {
                Next::CutOff => {
                    next_delay = (next_delay * 2).min(CUT_OFF_LAST_CHECK);
                    TimeoutAction::ToDuration(next_delay)
                }
                _ => {
                    if let Some(registration) = state.registrations.remove(&key) {
                        state.handle.remove(registration.token);
                    }
                    TimeoutAction::Drop
                }
            }
        });
        if let Err(e) = inserted {
            error!("cannot arm the check of a cut-off client: {}", e.error);
        }
    }

    /// SIGHUP: recompiles the keymap from its source. On success every
    /// keyboard of every client gets the new keymap once, and the old
    /// sealed file goes as soon as no queue holds a dup of it.
    pub fn reload_keymap(&mut self) {
        let keymap = match Keymap::load(&self.keymap_source) {
            Ok(keymap) => keymap,
            Err(e) => {
                error!(
                    "reloading {} failed, keeping the old keymap: {}",
                    self.keymap_source,
                    error_chain(&e)
                );
                return;
            }
        };
        let (told, changes) = self.core.reload_keymap(keymap);
        self.apply(changes);
        info!(
            "reloaded {}; sent it to {told} keyboards",
            self.keymap_source
        );
    }

    /// A child's pidfd, or SIGCHLD: reaps our exited children; with
    /// `--exit-with-children`, stops the loop once none is left.
    pub fn reap_children(&mut self) {
        if self.children.reap() {
            info!("every spawned child has exited: shutting down");
            self.request_stop();
        }
    }

    /// SIGINT / SIGTERM, or a [`crate::StopHandle`]: leave the loop.
    pub fn request_stop(&mut self) {
        self.stop.stop();
    }

    /// Closes every client (at shutdown).
    pub fn close_all(&mut self) {
        self.core.close_all();
        for (_, registration) in self.registrations.drain() {
            self.handle.remove(registration.token);
        }
        for (_, token) in self.jobs.drain() {
            self.handle.remove(token);
        }
    }
}
