//! The file workers of `listen`: a fixed number of threads that read
//! offered files, off the loop that serves every peer.
//!
//! What it is: [`Workers`], a job queue feeding [`WORKERS`] threads, and a
//! way back to the loop: [`Update`]s on a channel plus a wake-up socket the
//! loop polls. What it is not: a thread per file (the number of threads is
//! fixed), nor the peer protocol: the loop sends the acks, refusals and
//! progress messages.
//!
//! # Implementation notes
//!
//! - A worker reports progress when it starts reading a file of at least
//!   [`PROGRESS_START_MIN`] bytes (`done` 0: the sender knows we are at
//!   it), then every [`PROGRESS_BYTES`] or [`PROGRESS_EVERY`], whichever
//!   comes first, so that a sender waiting for its ack hears from us while
//!   a large file is read.
//! - Each update is followed by one byte on the wake-up socket. The socket
//!   is non-blocking: when it is full the loop has plenty to wake up for
//!   already, and it drains the channel, not the bytes, to learn what
//!   happened.
//! - The queue is not bounded here: `listen` does not read a peer while its
//!   file is queued or being read, so there is at most one job per peer.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use waypass_client::FileOffer;

use super::save::{receive, Checked, Received, Refusal};
use super::save_dir::SaveDir;

/// How many files are read at once.
pub(super) const WORKERS: usize = 2;

/// Progress is reported at least every this many bytes...
pub(super) const PROGRESS_BYTES: u64 = 64 << 20;

/// Files at least this large get a `progress(serial, 0)` when their reading
/// starts.
pub(super) const PROGRESS_START_MIN: u64 = 1 << 20;

/// ...and at least this often.
pub(super) const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// One offered file to read.
pub(super) struct Job {
    /// The peer that offered it.
    pub peer: u64,
    /// The offer.
    pub offer: FileOffer,
    /// What the loop's checks found.
    pub checked: Checked,
}

/// What a worker tells the loop.
pub(super) enum Update {
    /// `done` bytes of the peer's file are read.
    Progress {
        /// The peer.
        peer: u64,
        /// The offer's serial.
        serial: u32,
        /// Bytes read so far.
        done: u64,
    },
    /// The file is read (or could not be).
    Done {
        /// The peer.
        peer: u64,
        /// The offer (its name, size and serial; its fd is closed).
        name: String,
        /// The offer's serial.
        serial: u32,
        /// The announced size.
        size: u64,
        /// What came of it.
        result: Result<Received, Refusal>,
    },
}

/// The worker threads and the way back from them.
pub(super) struct Workers {
    jobs: Sender<Job>,
    updates: Receiver<Update>,
    wake: UnixStream,
}

impl Workers {
    /// Starts [`WORKERS`] threads that save into `dir` if given.
    pub fn start(dir: Option<Arc<SaveDir>>) -> io::Result<Workers> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let (tx, updates) = mpsc::channel();
        let (wake, waker) = UnixStream::pair()?;
        wake.set_nonblocking(true)?;
        waker.set_nonblocking(true)?;
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..WORKERS {
            let worker = Worker {
                queue: Arc::clone(&queue),
                updates: tx.clone(),
                waker: waker.try_clone()?,
                dir: dir.clone(),
            };
            thread::Builder::new()
                .name(format!("file-worker-{i}"))
                .spawn(move || worker.run())?;
        }
        Ok(Workers {
            jobs,
            updates,
            wake,
        })
    }

    /// Queues a file to read.
    pub fn submit(&self, job: Job) {
        // The workers live as long as the process: the queue stays open.
        if self.jobs.send(job).is_err() {
            log::error!("the file workers are gone");
        }
    }

    /// The socket to poll for updates.
    pub fn wake_fd(&self) -> BorrowedFd<'_> {
        self.wake.as_fd()
    }

    /// Every update there is now.
    pub fn take(&self) -> Vec<Update> {
        let mut sink = [0u8; 256];
        // Drain the wake-up bytes; WouldBlock ends it.
        while matches!((&self.wake).read(&mut sink), Ok(n) if n > 0) {}
        self.updates.try_iter().collect()
    }
}

/// One worker thread's ends.
struct Worker {
    queue: Arc<Mutex<Receiver<Job>>>,
    updates: Sender<Update>,
    waker: UnixStream,
    dir: Option<Arc<SaveDir>>,
}

impl Worker {
    fn run(self) {
        loop {
            let job = {
                let Ok(queue) = self.queue.lock() else { return };
                match queue.recv() {
                    Ok(job) => job,
                    // The loop is gone.
                    Err(_) => return,
                }
            };
            self.work(job);
        }
    }

    fn work(&self, job: Job) {
        let (peer, serial) = (job.peer, job.offer.serial);
        if job.offer.size >= PROGRESS_START_MIN {
            // Tell the sender its file is being read, before the first chunk.
            self.send(Update::Progress {
                peer,
                serial,
                done: 0,
            });
        }
        let mut last = (0u64, Instant::now());
        let mut progress = |done: u64| {
            if done - last.0 >= PROGRESS_BYTES || last.1.elapsed() >= PROGRESS_EVERY {
                last = (done, Instant::now());
                self.send(Update::Progress { peer, serial, done });
            }
        };
        let result = receive(&job.offer, job.checked, self.dir.as_deref(), &mut progress);
        let Job { offer, .. } = job;
        self.send(Update::Done {
            peer,
            name: offer.name,
            serial,
            size: offer.size,
            result,
        });
    }

    fn send(&self, update: Update) {
        if self.updates.send(update).is_ok() {
            // Full: the loop has wake-ups waiting already.
            let _ = (&self.waker).write(&[1]);
        }
    }
}
