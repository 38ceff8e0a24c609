//! One printer for an error and its chain of sources, shared by the server
//! and the client so both report failures the same way.
//!
//! It is not an error type: each layer keeps its own small enum, whose
//! `Display` says what failed and whose `source()` says why. This joins the
//! two into the line an operator reads.

use std::error::Error;

/// `err` and its chain of sources as one line: `a: b: c`.
///
/// Newlines inside a message (some lower layers write several lines)
/// become spaces, so the result is always one line.
///
/// ```
/// use std::io;
/// use waypass_protocol::error_chain;
///
/// let e = io::Error::other("disk full");
/// assert_eq!(error_chain(&e), "disk full");
/// ```
pub fn error_chain(err: &dyn Error) -> String {
    let mut line = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        line.push_str(": ");
        line.push_str(&e.to_string());
        cur = e.source();
    }
    line.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use std::fmt;

    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("cannot open")
        }
    }

    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn each_cause_is_printed_once_on_one_line() {
        let e = Outer(std::io::Error::other("no\nspace"));
        assert_eq!(error_chain(&e), "cannot open: no space");
    }
}
