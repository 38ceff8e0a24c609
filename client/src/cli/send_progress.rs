//! The progress of one file offer, as the receiver reports it: a bar on a
//! terminal, and the last count for the "no ack" message.
//!
//! What it is: [`OfferProgress`], fed with the receiver's `progress`
//! counts (bytes it has read through the fd) while `send-file` waits for
//! the ack. It draws an indicatif bar on stderr only when stderr is a
//! terminal and the file is large; on a pipe it only remembers the count.
//! What it is not: a measure of our own work (we never read the file: the
//! receiver does, through the fd).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Files smaller than this get no bar: they are read before one would show.
pub(super) const BAR_THRESHOLD: u64 = 8 << 20;

/// The receiver's progress through one offered file.
#[derive(Debug)]
pub(super) struct OfferProgress {
    size: u64,
    read: Option<u64>,
    bar: Option<ProgressBar>,
}

impl OfferProgress {
    /// Progress of a file of `size` bytes offered as `name` to `to`; with a
    /// bar when [`wants_bar`] says so for our stderr.
    pub fn new(size: u64, to: &str, name: &str) -> OfferProgress {
        let bar = wants_bar(std::io::stderr().is_terminal(), size).then(|| {
            let bar = ProgressBar::with_draw_target(Some(size), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_message(format!("{to} reading {name}"));
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        OfferProgress {
            size,
            read: None,
            bar,
        }
    }

    /// The receiver says it has read `done` bytes.
    pub fn update(&mut self, done: u64) {
        self.read = Some(done);
        if let Some(bar) = &self.bar {
            bar.set_position(done.min(self.size));
        }
    }

    /// What the receiver had read, if it said anything: `(read, size)`.
    pub fn seen(&self) -> Option<(u64, u64)> {
        self.read.map(|read| (read, self.size))
    }

    /// Removes the bar, whatever the outcome.
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for OfferProgress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Whether to draw a bar: only on a terminal, only for a large file.
pub(super) fn wants_bar(terminal: bool, size: u64) -> bool {
    terminal && size >= BAR_THRESHOLD
}

/// `120.00 MiB of 300.00 MiB`, for messages.
pub(super) fn read_of(read: u64, size: u64) -> String {
    format!("{} of {}", HumanBytes(read), HumanBytes(size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bar_only_for_a_large_file_on_a_terminal() {
        assert!(wants_bar(true, 300 << 20));
        assert!(!wants_bar(false, 300 << 20), "never on a pipe");
        assert!(!wants_bar(true, 1024), "not for a small file");
    }

    #[test]
    fn the_last_count_is_remembered_for_the_message() {
        let mut p = OfferProgress::new(300 << 20, "bob", "big");
        assert_eq!(p.seen(), None);
        p.update(120 << 20);
        assert_eq!(p.seen(), Some((120 << 20, 300 << 20)));
        let (read, size) = p.seen().expect("seen");
        assert_eq!(read_of(read, size), "120.00 MiB of 300.00 MiB");
    }
}
