//! [`Args`]: a decoded message's arguments, kept inline up to
//! [`INLINE_ARGS`] of them, so that decoding a message allocates nothing.
//!
//! What it is: a small vector that derefs to `[Arg]`, in safe code. What it
//! is not: a general-purpose small vector. It is written here rather than
//! taken from `smallvec` or `arrayvec` because those implement `Drop`
//! themselves, and a type with its own `Drop` keeps the buffer a message
//! borrows from borrowed until the message is dropped: with them,
//! `conn.next_message(..)` could not be called again while an earlier
//! message was still in scope. `Args` has no `Drop` of its own (an array
//! and a `Vec` drop their elements), so it borrows exactly like `Vec`.
//!
//! # Implementation notes
//!
//! Unused inline slots hold `Arg::Int(0)`, which owns nothing. Once an
//! argument past [`INLINE_ARGS`] arrives, every argument moves to the heap
//! vector, so the elements are always one contiguous slice.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::os::fd::OwnedFd;

use super::Arg;

/// Arguments a message keeps inline; more go to the heap. Wayland's own
/// limit is 20 (`WL_CLOSURE_MAX_ARGS`); every request this crate's servers
/// handle, and every event of `wl_keyboard`, the broker and the clipboard,
/// has at most 6 (`wl_output.geometry`, 8, is the longest in `wayland.xml`).
pub const INLINE_ARGS: usize = 4;

/// A decoded message's arguments, in signature order. It derefs to
/// `[Arg]`: index it, match on `&args[..]`, or iterate it; `into_iter`
/// moves the arguments (and their fds) out.
pub struct Args<'a> {
    /// How many of `inline` are used, while `heap` is empty.
    len: usize,
    inline: [Arg<'a, OwnedFd>; INLINE_ARGS],
    /// All the arguments, once there were more than `INLINE_ARGS`.
    heap: Vec<Arg<'a, OwnedFd>>,
}

/// What fills an unused inline slot: it owns nothing.
fn empty() -> Arg<'static, OwnedFd> {
    Arg::Int(0)
}

impl<'a> Args<'a> {
    /// No arguments.
    pub fn new() -> Self {
        Args {
            len: 0,
            inline: std::array::from_fn(|_| empty()),
            heap: Vec::new(),
        }
    }

    /// Appends an argument.
    pub fn push(&mut self, arg: Arg<'a, OwnedFd>) {
        if !self.heap.is_empty() {
            self.heap.push(arg);
        } else if self.len < INLINE_ARGS {
            self.inline[self.len] = arg;
            self.len += 1;
        } else {
            let mut heap = Vec::with_capacity(INLINE_ARGS * 2);
            for slot in &mut self.inline {
                heap.push(std::mem::replace(slot, empty()));
            }
            heap.push(arg);
            self.heap = heap;
            self.len = 0;
        }
    }

    /// Removes and returns the last argument.
    pub fn pop(&mut self) -> Option<Arg<'a, OwnedFd>> {
        if !self.heap.is_empty() {
            return self.heap.pop();
        }
        self.len = self.len.checked_sub(1)?;
        Some(std::mem::replace(&mut self.inline[self.len], empty()))
    }

    /// The arguments as a slice.
    pub fn as_slice(&self) -> &[Arg<'a, OwnedFd>] {
        self
    }

    /// The arguments as a `Vec` (which allocates).
    pub fn into_vec(self) -> Vec<Arg<'a, OwnedFd>> {
        self.into_iter().collect()
    }
}

impl Default for Args<'_> {
    fn default() -> Self {
        Args::new()
    }
}

impl<'a> Deref for Args<'a> {
    type Target = [Arg<'a, OwnedFd>];

    fn deref(&self) -> &Self::Target {
        if self.heap.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.heap
        }
    }
}

impl DerefMut for Args<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        if self.heap.is_empty() {
            &mut self.inline[..self.len]
        } else {
            &mut self.heap
        }
    }
}

impl fmt::Debug for Args<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> FromIterator<Arg<'a, OwnedFd>> for Args<'a> {
    fn from_iter<I: IntoIterator<Item = Arg<'a, OwnedFd>>>(iter: I) -> Self {
        let mut args = Args::new();
        for arg in iter {
            args.push(arg);
        }
        args
    }
}

impl<'a> From<Vec<Arg<'a, OwnedFd>>> for Args<'a> {
    fn from(heap: Vec<Arg<'a, OwnedFd>>) -> Self {
        heap.into_iter().collect()
    }
}

/// The arguments of an [`Args`], moved out in order.
pub type IntoIter<'a> = std::iter::Chain<
    std::iter::Take<std::array::IntoIter<Arg<'a, OwnedFd>, INLINE_ARGS>>,
    std::vec::IntoIter<Arg<'a, OwnedFd>>,
>;

impl<'a> IntoIterator for Args<'a> {
    type Item = Arg<'a, OwnedFd>;
    type IntoIter = IntoIter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.inline.into_iter().take(self.len).chain(self.heap)
    }
}

impl<'s, 'a> IntoIterator for &'s Args<'a> {
    type Item = &'s Arg<'a, OwnedFd>;
    type IntoIter = std::slice::Iter<'s, Arg<'a, OwnedFd>>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uints(args: &Args<'_>) -> Vec<u32> {
        args.iter()
            .map(|a| match a {
                Arg::Uint(v) => *v,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn arguments_stay_in_order_inline_and_past_the_inline_room() {
        for n in [0, 1, INLINE_ARGS, INLINE_ARGS + 1, 20] {
            let args: Args<'_> = (0..n as u32).map(Arg::Uint).collect();
            let expected: Vec<u32> = (0..n as u32).collect();
            assert_eq!(uints(&args), expected, "{n} arguments");
            assert_eq!(args.len(), n);
            let mut popped = (0..n as u32).map(Arg::Uint).collect::<Args<'_>>();
            let mut back = Vec::new();
            while let Some(Arg::Uint(v)) = popped.pop() {
                back.push(v);
            }
            back.reverse();
            assert_eq!(back, expected, "{n} arguments popped");
            let moved: Vec<u32> = args
                .into_iter()
                .map(|a| match a {
                    Arg::Uint(v) => v,
                    other => panic!("{other:?}"),
                })
                .collect();
            assert_eq!(moved, expected, "{n} arguments moved out");
        }
    }

    #[test]
    fn fds_are_closed_with_the_arguments_and_moved_out_with_them() {
        use std::os::fd::AsRawFd;
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let (a, b): (OwnedFd, OwnedFd) = (a.into(), b.into());
        let (raw_a, raw_b) = (a.as_raw_fd(), b.as_raw_fd());
        let mut args: Args<'_> = (0..INLINE_ARGS as u32).map(Arg::Uint).collect();
        args.push(Arg::Fd(a)); // moves everything to the heap
        let mut kept = Args::new();
        kept.push(Arg::Fd(b));
        drop(args);
        let open = |fd| std::path::Path::new(&format!("/proc/self/fd/{fd}")).exists();
        assert!(!open(raw_a), "dropping the arguments closes their fds");
        let Some(Arg::Fd(b)) = kept.into_iter().next() else {
            panic!("the fd was not moved out");
        };
        assert!(open(raw_b) && b.as_raw_fd() == raw_b);
    }

    #[test]
    fn a_message_does_not_hold_its_buffer_borrowed_once_unused() {
        // Compiles only if `Args`, like `Vec`, drops without touching what
        // its arguments borrow: `first` is still in scope (dropped at the
        // end) when `buf` is written again.
        let mut buf = b"ab\0".to_vec();
        let first: Args<'_> = [Arg::Str(Some(
            std::ffi::CStr::from_bytes_with_nul(&buf).unwrap(),
        ))]
        .into_iter()
        .collect();
        assert_eq!(first.len(), 1);
        buf[0] = b'x';
        assert_eq!(buf[0], b'x');
    }

    #[test]
    fn every_view_and_conversion_holds_the_same_arguments() {
        for n in [0, 1, INLINE_ARGS, INLINE_ARGS + 1, 9] {
            let expected: Vec<u32> = (0..n as u32).collect();
            let from_vec = Args::from((0..n as u32).map(Arg::Uint).collect::<Vec<_>>());
            assert_eq!(uints(&from_vec), expected, "{n} arguments from a Vec");
            let in_slice: Vec<u32> = from_vec
                .as_slice()
                .iter()
                .map(|a| match a {
                    Arg::Uint(v) => *v,
                    other => panic!("{other:?}"),
                })
                .collect();
            assert_eq!(in_slice, expected, "{n} arguments as a slice");
            let mut by_ref = Vec::new();
            for a in &from_vec {
                let Arg::Uint(v) = a else { panic!("{a:?}") };
                by_ref.push(*v);
            }
            assert_eq!(by_ref, expected, "{n} arguments iterated by reference");
            let in_vec: Vec<u32> = from_vec
                .into_vec()
                .into_iter()
                .map(|a| match a {
                    Arg::Uint(v) => v,
                    other => panic!("{other:?}"),
                })
                .collect();
            assert_eq!(in_vec, expected, "{n} arguments into a Vec");
        }
        assert!(Args::default().is_empty());
    }
}
