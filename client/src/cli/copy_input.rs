//! What `copy` copies, loaded into a sealed memfd: the words given (as
//! wl-copy, joined by spaces), stdin, or `--file FILE`.
//!
//! What it is: [`load`], which reads the input once into a memfd, trims
//! one trailing newline if asked (`--trim-newline`), and seals it, so that
//! the background copy can take it as its stdin and every paste reads it
//! without copies; and [`is_utf8`], which says whether the data is text.
//! A read error is reported against what was being read (`cannot read
//! stdin: Is a directory`), never as an output error. What it is not: the
//! choice of MIME types (`cli::mime`) or the serving (`cli::copy`).

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use memfd::{FileSeal, MemfdOptions};

use super::CliError;

/// Where the data comes from.
#[derive(Debug, Clone, Copy)]
pub(super) enum Input<'a> {
    /// Words from the command line, joined by single spaces.
    Words(&'a [String]),
    /// Standard input, to its end.
    Stdin,
    /// A file, to its end.
    File(&'a Path),
}

/// Reads `input` into a sealed memfd (offset 0), without its trailing
/// newline if `trim_newline` (stdin and files only, as wl-copy).
pub(super) fn load(input: Input<'_>, trim_newline: bool) -> Result<File, CliError> {
    let memfd = MemfdOptions::default()
        .allow_sealing(true)
        .close_on_exec(true)
        .create("waypass-copy")
        .map_err(|e| store_error(io::Error::other(e)))?;
    let mut out = memfd.as_file();
    match input {
        Input::Words(words) => out
            .write_all(words.join(" ").as_bytes())
            .map_err(store_error)?,
        Input::Stdin => copy_to(&mut io::stdin().lock(), Path::new("stdin"), out)?,
        Input::File(path) => {
            let mut file = File::open(path).map_err(|e| read_error(path, e))?;
            copy_to(&mut file, path, out)?;
        }
    }
    if trim_newline && !matches!(input, Input::Words(_)) {
        trim_one_newline(out).map_err(store_error)?;
    }
    memfd
        .add_seals(&[
            FileSeal::SealShrink,
            FileSeal::SealGrow,
            FileSeal::SealWrite,
            FileSeal::SealSeal,
        ])
        .map_err(|e| store_error(io::Error::other(e)))?;
    let mut file = memfd.into_file();
    file.seek(io::SeekFrom::Start(0)).map_err(store_error)?;
    Ok(file)
}

/// Copies `from` (named `name` in errors) to the end of `out`.
fn copy_to(from: &mut impl Read, name: &Path, mut out: &File) -> Result<(), CliError> {
    let mut buf = vec![0u8; 1 << 18];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_error(name, e)),
        };
        out.write_all(&buf[..n]).map_err(store_error)?;
    }
}

/// Removes the file's last byte if it is a newline.
fn trim_one_newline(file: &File) -> io::Result<()> {
    let len = file.metadata()?.len();
    let mut last = [0u8];
    if len > 0 && file.read_at(&mut last, len - 1)? == 1 && last[0] == b'\n' {
        file.set_len(len - 1)?;
    }
    Ok(())
}

/// Whether the data is UTF-8 text (checked in chunks, a char split at a
/// chunk's end carried over).
pub(super) fn is_utf8(data: &File) -> Result<bool, CliError> {
    let mut buf = vec![0u8; 1 << 16];
    let (mut offset, mut carry) = (0u64, 0usize);
    loop {
        let n = data
            .read_at(&mut buf[carry..], offset)
            .map_err(store_error)?;
        if n == 0 {
            return Ok(carry == 0);
        }
        offset += n as u64;
        let chunk = &buf[..carry + n];
        match std::str::from_utf8(chunk) {
            Ok(_) => carry = 0,
            Err(e) if e.error_len().is_none() => {
                let good = e.valid_up_to();
                let rest = chunk.len() - good;
                buf.copy_within(good.., 0);
                carry = rest;
            }
            Err(_) => return Ok(false),
        }
    }
}

fn read_error(path: &Path, source: io::Error) -> CliError {
    CliError::Input {
        path: PathBuf::from(path),
        source,
    }
}

/// The memfd that holds the data failed (out of memory, most likely).
fn store_error(e: io::Error) -> CliError {
    CliError::Copy(format!("cannot keep the data to copy in memory: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(mut file: File) -> Vec<u8> {
        let mut data = Vec::new();
        file.read_to_end(&mut data).unwrap();
        data
    }

    #[test]
    fn words_are_joined_by_spaces_and_never_trimmed() {
        let words = ["hello".to_string(), "world\n".to_string()];
        assert_eq!(
            read_all(load(Input::Words(&words), true).unwrap()),
            b"hello world\n"
        );
    }

    #[test]
    fn a_file_loses_one_trailing_newline_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"a\n\n").unwrap();
        assert_eq!(read_all(load(Input::File(&path), true).unwrap()), b"a\n");
        assert_eq!(read_all(load(Input::File(&path), false).unwrap()), b"a\n\n");
    }

    #[test]
    fn a_directory_is_a_read_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let err = load(Input::File(dir.path()), false).unwrap_err();
        let line = waypass_client::chain_to_string(&err);
        assert!(
            line.starts_with(&format!("cannot read {}: ", dir.path().display())),
            "{line}"
        );
        assert!(line.contains("Is a directory"), "{line}");
    }

    #[test]
    fn utf8_split_across_chunks_is_still_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut text = vec![b'a'; (1 << 16) - 1];
        text.extend("é".as_bytes());
        std::fs::write(&path, &text).unwrap();
        assert!(is_utf8(&load(Input::File(&path), false).unwrap()).unwrap());
        std::fs::write(&path, b"\xff\xfe").unwrap();
        assert!(!is_utf8(&load(Input::File(&path), false).unwrap()).unwrap());
    }
}
