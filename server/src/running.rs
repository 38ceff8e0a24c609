//! A server in a thread of its own: [`ServerBuilder::start_in_thread`]
//! and the [`RunningServer`] it returns.
//!
//! What it is not: another server. The thread builds and runs a
//! [`crate::Server`] as a caller on its own thread would (calloop's event
//! loop is not `Send`, so the server is built where it runs); this module
//! only reports when it listens and carries its result back.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};

use crate::builder::{ServerBuilder, StopHandle};
use crate::errors::{RunError, StartError};

impl ServerBuilder {
    /// Builds and runs the server in a new thread, returning once it
    /// listens (or with the error that kept it from starting).
    ///
    /// ```no_run
    /// use waypass_server::{ServerBuilder, ServerConfig};
    ///
    /// let mut config = ServerConfig::default();
    /// config.socket = Some("/tmp/waypass-example".into());
    /// let server = ServerBuilder::new(config).start_in_thread().expect("listening");
    /// // ... clients connect to server.socket_path() ...
    /// let code = server.stop_and_join().expect("stopped");
    /// ```
    pub fn start_in_thread(self) -> Result<RunningServer, StartError> {
        let (ready, listening) = mpsc::sync_channel(1);
        let thread = thread::Builder::new()
            .name("waypass-server".into())
            .spawn(move || {
                let server = match self.build() {
                    Ok(server) => server,
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        // Not read: `start_in_thread` returns the error.
                        return Ok(ExitCode::FAILURE);
                    }
                };
                let listens = (server.socket_path().to_owned(), server.stop_handle());
                // The receiver lives until it has read this one message.
                let _ = ready.send(Ok(listens));
                server.run()
            })
            .map_err(StartError::Thread)?;
        match listening.recv() {
            Ok(Ok((socket, stop))) => Ok(RunningServer {
                socket,
                stop,
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            // The thread ended without a word: it panicked.
            Err(mpsc::RecvError) => {
                let _ = thread.join();
                Err(StartError::Panicked)
            }
        }
    }
}

/// A server listening in its own thread ([`ServerBuilder::start_in_thread`]).
/// Dropped, it stops the server and waits for its thread.
#[derive(Debug)]
pub struct RunningServer {
    socket: PathBuf,
    stop: StopHandle,
    /// `None` once joined.
    thread: Option<JoinHandle<Result<ExitCode, RunError>>>,
}

impl RunningServer {
    /// The listening socket's path, made absolute.
    pub fn socket_path(&self) -> &Path {
        &self.socket
    }

    /// A handle that stops the server, from any thread.
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// Waits until the server ends (stopped by a [`StopHandle`], or by its
    /// last child with `exit_with_children`) and returns what
    /// [`crate::Server::run`] returned.
    pub fn join(mut self) -> Result<ExitCode, RunError> {
        self.wait()
    }

    /// Stops the server and waits until it has ended.
    pub fn stop_and_join(self) -> Result<ExitCode, RunError> {
        self.stop.stop();
        self.join()
    }

    fn wait(&mut self) -> Result<ExitCode, RunError> {
        match self.thread.take() {
            Some(thread) => thread.join().map_err(|_| RunError::Panicked)?,
            // Only `join` and `drop` wait, and each consumes the server.
            None => Ok(ExitCode::SUCCESS),
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop.stop();
            let _ = self.wait();
        }
    }
}
