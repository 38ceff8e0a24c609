//! [`PeerChannel`] end to end over `UnixStream::pair()`, against the real
//! kernel: texts and acks both ways, files handed over as fds (one of
//! 64 MiB), sealed snapshots, lying and hostile peers, and fd hygiene.
//!
//! Every test holds `SERIAL` for its whole body, so the fd-count test sees
//! no fd opened or closed by another test thread of this binary.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use nix::sys::stat::fstat;
use sha2::{Digest, Sha256};
use waypass_protocol::protocols::broker::waypass_peer_v1;
use waypass_protocol::{
    inspect_fd, Arg, ChannelError, Connection, FileOffer, Flush, PeerChannel, PeerMessage,
    SealedFile, Seals, MAX_NAME_LEN, MAX_TEXT_LEN,
};

/// Long enough never to fire on a loaded machine; only a hang reaches it.
const T: Option<Duration> = Some(Duration::from_secs(120));

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn open_fds() -> usize {
    // The directory's own fd is counted every time, so it cancels out.
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// A private directory under the system temp dir, removed on drop.
struct TempDir(tempfile::TempDir);

impl TempDir {
    fn new() -> TempDir {
        let dir = tempfile::Builder::new()
            .prefix("wp-peer-channel-")
            .tempdir()
            .unwrap();
        TempDir(dir)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }

    fn file(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

fn channels() -> (PeerChannel, PeerChannel) {
    let (a, b) = UnixStream::pair().unwrap();
    (PeerChannel::new(a).unwrap(), PeerChannel::new(b).unwrap())
}

fn expect_text(ch: &mut PeerChannel) -> (u32, String) {
    match ch.recv(T).unwrap() {
        Some(PeerMessage::Text { serial, text }) => (serial, text),
        other => panic!("expected a text, got {other:?}"),
    }
}

fn expect_file(ch: &mut PeerChannel) -> FileOffer {
    match ch.recv(T).unwrap() {
        Some(PeerMessage::File(offer)) => offer,
        other => panic!("expected a file, got {other:?}"),
    }
}

fn dev_ino(fd: impl AsFd) -> (u64, u64) {
    let st = fstat(fd.as_fd()).unwrap();
    (st.st_dev, st.st_ino)
}

/// Writes `len` pseudo-random bytes (xorshift64*) to `path` and returns
/// their SHA-256.
fn write_random_file(path: &Path, len: usize, seed: u64) -> Vec<u8> {
    let mut file = File::create(path).unwrap();
    let mut hasher = Sha256::new();
    let mut state = seed | 1;
    let mut chunk = vec![0u8; 1 << 20];
    for _ in 0..len / chunk.len() {
        for word in chunk.chunks_exact_mut(8) {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            word.copy_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_ne_bytes());
        }
        hasher.update(&chunk);
        file.write_all(&chunk).unwrap();
    }
    hasher.finalize().to_vec()
}

/// An `io::Write` that only hashes.
struct HashWriter(Sha256);

impl Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn texts_go_both_ways_and_are_acked() {
    let _serial = serial();
    let (mut a, mut b) = channels();
    let to_b = a.send_text("hello from a").unwrap();
    let to_a = b.send_text("hello from b").unwrap();

    let (serial, text) = expect_text(&mut b);
    assert_eq!((serial, text.as_str()), (to_b, "hello from a"));
    b.ack(serial).unwrap();
    let (serial, text) = expect_text(&mut a);
    assert_eq!((serial, text.as_str()), (to_a, "hello from b"));
    a.ack(serial).unwrap();

    a.wait_ack(to_b, T).unwrap();
    b.wait_ack(to_a, T).unwrap();
}

#[test]
fn a_text_at_the_limit_arrives_and_one_over_it_is_refused() {
    let _serial = serial();
    let (mut a, mut b) = channels();
    let longest = "é".repeat(MAX_TEXT_LEN / 2) + "x";
    assert_eq!(longest.len(), MAX_TEXT_LEN);
    let sent = a.send_text(&longest).unwrap();
    let (serial, text) = expect_text(&mut b);
    assert_eq!((serial, text), (sent, longest));

    let over = "x".repeat(MAX_TEXT_LEN + 1);
    let e = a.send_text(&over).unwrap_err();
    assert!(matches!(
        e,
        ChannelError::TooLong { len, max } if len == MAX_TEXT_LEN + 1 && max == MAX_TEXT_LEN
    ));
    assert!(!e.is_fatal());
    // Nothing was queued, and the channel goes on.
    let next = a.send_text("still here").unwrap();
    let (serial, text) = expect_text(&mut b);
    assert_eq!((serial, text.as_str()), (next, "still here"));
}

#[test]
fn a_file_arrives_as_the_same_inode_and_is_read_from_offset_zero() {
    let _serial = serial();
    let dir = TempDir::new();
    let contents = b"the quick brown fox jumps over the lazy dog\n".repeat(100);
    let path = dir.file("fox.txt", &contents);
    let (mut a, mut b) = channels();

    let by_path = a.send_path(&path).unwrap();
    // An fd whose shared offset sits at end of file, offered as is.
    let mut at_eof = File::open(&path).unwrap();
    at_eof.read_to_end(&mut Vec::new()).unwrap();
    let by_fd = a
        .send_file(at_eof.as_fd(), "fox.txt", contents.len() as u64)
        .unwrap();

    let meta = std::fs::metadata(&path).unwrap();
    for serial in [by_path, by_fd] {
        let offer = expect_file(&mut b);
        assert_eq!(offer.serial, serial);
        assert_eq!(dev_ino(&offer.fd), (meta.dev(), meta.ino()));
        assert_eq!((offer.name.as_str(), offer.size), ("fox.txt", meta.size()));
        assert_eq!(offer.safe_name(), Some("fox.txt"));
        assert_eq!(offer.read_to_vec().unwrap(), contents);
        let mut copy = Vec::new();
        assert_eq!(offer.read_into(&mut copy).unwrap(), meta.size());
        assert_eq!(copy, contents);
        assert_eq!(&offer.map().unwrap()[..], &contents[..]);
        b.ack(offer.serial).unwrap();
    }
    a.wait_ack(by_fd, T).unwrap();
    a.wait_ack(by_path, T).unwrap();
}

#[test]
fn a_64_mib_file_crosses_as_an_fd_and_the_socket_carries_a_few_bytes() {
    let _serial = serial();
    let dir = TempDir::new();
    let path = dir.join("random.bin");
    const LEN: usize = 64 << 20;
    let expected = write_random_file(&path, LEN, 0x5eed);
    let (mut sender, mut receiver) = channels();

    let reader = std::thread::spawn(move || {
        let offer = expect_file(&mut receiver);
        assert_eq!(offer.size, LEN as u64);
        let bytes = offer.read_to_vec().unwrap();
        let mut streamed = HashWriter(Sha256::new());
        assert_eq!(offer.read_into(&mut streamed).unwrap(), LEN as u64);
        receiver.ack(offer.serial).unwrap();
        receiver.flush(T).unwrap();
        (
            Sha256::digest(&bytes).to_vec(),
            streamed.0.finalize().to_vec(),
            receiver.bytes_received(),
        )
    });
    let serial = sender.send_path(&path).unwrap();
    sender.wait_ack(serial, T).unwrap();
    let (read, streamed, received) = reader.join().unwrap();

    assert_eq!(read, expected);
    assert_eq!(streamed, expected);
    // One file message (about 40 bytes) out, one 12-byte ack back.
    assert!(sender.bytes_sent() < 256, "{}", sender.bytes_sent());
    assert!(received < 256, "{received}");
    assert!(sender.bytes_received() < 256);
}

#[test]
fn sizes_above_4_gib_are_split_and_joined() {
    let _serial = serial();
    let (mut a, mut b) = channels();
    let sparse = memfd::MemfdOptions::default().create("sparse").unwrap();
    let size = (5u64 << 30) + 7;
    sparse.as_file().set_len(size).unwrap();
    a.send_file(sparse.as_file().as_fd(), "sparse", size)
        .unwrap();
    let offer = expect_file(&mut b);
    assert_eq!(offer.size, size);
    assert_eq!(offer.check_size().unwrap(), size);
}

#[test]
fn a_sealed_snapshot_arrives_sealed_and_whole() {
    let _serial = serial();
    let (mut a, mut b) = channels();
    let contents = b"frozen contents".repeat(1000);
    a.send_snapshot("snapshot.bin", &contents).unwrap();
    let shared = SealedFile::from_bytes("shared", b"one file, many offers").unwrap();
    a.send_sealed(&shared, "shared.txt").unwrap();
    a.send_sealed(&shared, "shared.txt").unwrap();

    let offer = expect_file(&mut b);
    assert_eq!(offer.safe_name(), Some("snapshot.bin"));
    let info = inspect_fd(offer.fd.as_fd()).unwrap();
    assert!(info.memfd);
    let all = Seals(Seals::SEAL.0 | Seals::SHRINK.0 | Seals::GROW.0 | Seals::WRITE.0);
    assert!(info.seals.unwrap().contains(all));
    assert_eq!(offer.read_to_vec().unwrap(), contents);
    assert!(nix::unistd::write(&offer.fd, b"x").is_err());

    let (first, second) = (expect_file(&mut b), expect_file(&mut b));
    assert_eq!(dev_ino(&first.fd), dev_ino(&shared));
    assert_eq!(dev_ino(&second.fd), dev_ino(&shared));
    for offer in [first, second] {
        assert_eq!(&offer.map().unwrap()[..], b"one file, many offers");
    }
}

#[test]
fn a_peer_announcing_more_than_its_file_holds_gets_bad_size() {
    let _serial = serial();
    let (a, b) = UnixStream::pair().unwrap();
    // The lying peer speaks the wire directly: PeerChannel would refuse.
    let mut liar = Connection::new(a).unwrap();
    let mut honest = PeerChannel::new(b).unwrap();
    let file = SealedFile::from_bytes("small", b"abc").unwrap();
    let desc = &waypass_peer_v1::INTERFACE.requests[usize::from(waypass_peer_v1::req::FILE)];
    for (hi, lo) in [(0, 4), (1, 0)] {
        liar.send(
            waypass_protocol::protocols::broker::PEER_OBJECT_ID,
            waypass_peer_v1::req::FILE,
            desc,
            &[
                Arg::Uint(7),
                Arg::Fd(file.as_fd()),
                Arg::Str(Some(c"small")),
                Arg::Uint(hi),
                Arg::Uint(lo),
            ],
        )
        .unwrap();
    }
    assert_eq!(liar.flush().unwrap(), Flush::Done);

    for announced in [4, 1 << 32] {
        let offer = expect_file(&mut honest);
        assert_eq!(offer.size, announced);
        let bad = |e: ChannelError| {
            assert!(
                matches!(e, ChannelError::BadSize { announced: a, file_size: 3 } if a == announced),
                "{e:?}"
            );
        };
        bad(offer.read_to_vec().unwrap_err());
        bad(offer.read_into(&mut Vec::new()).unwrap_err());
        bad(offer.map().unwrap_err());
        bad(offer.check_size().unwrap_err());
    }
}

#[test]
fn unsafe_names_are_refused_by_safe_name() {
    let _serial = serial();
    let (mut a, mut b) = channels();
    for name in ["../x", "a/b", "", "..", "/etc/passwd", "ok.txt"] {
        a.send_snapshot(name, b"data").unwrap();
        let offer = expect_file(&mut b);
        assert_eq!(offer.name, name, "the announced name is kept as it came");
        let expected = (name == "ok.txt").then_some(name);
        assert_eq!(offer.safe_name(), expected, "{name:?}");
    }
    let long = "n".repeat(MAX_NAME_LEN + 1);
    let e = a.send_snapshot(&long, b"data").unwrap_err();
    assert!(matches!(
        e,
        ChannelError::TooLong {
            max: MAX_NAME_LEN,
            ..
        }
    ));
    let longest = "n".repeat(MAX_NAME_LEN);
    a.send_snapshot(&longest, b"data").unwrap();
    let offer = expect_file(&mut b);
    assert_eq!(offer.name, longest);
    assert_eq!(offer.safe_name(), None, "longer than NAME_MAX");
}

#[test]
fn fds_return_to_baseline_after_200_files_and_dropping_everything() {
    let _serial = serial();
    let dir = TempDir::new();
    let path = dir.file("one.txt", b"shared by path");
    let sealed = SealedFile::from_bytes("sealed", b"shared sealed").unwrap();
    let baseline = open_fds();
    {
        let (mut a, mut b) = channels();
        for i in 0..200 {
            let serial = match i % 3 {
                0 => a.send_path(&path).unwrap(),
                1 => a.send_sealed(&sealed, "sealed").unwrap(),
                _ => a.send_snapshot("snap", &[i as u8; 64]).unwrap(),
            };
            let offer = expect_file(&mut b);
            if i % 2 == 0 {
                assert!(!offer.read_to_vec().unwrap().is_empty());
            }
            b.ack(offer.serial).unwrap();
            a.wait_ack(serial, T).unwrap();
        }
        // Offers that arrive while b waits for an ack sit in b's inbox,
        // their fds open, until the channel is dropped.
        let question = b.send_text("done?").unwrap();
        for _ in 0..20 {
            a.send_snapshot("unread", b"never read").unwrap();
        }
        let (serial, _) = expect_text(&mut a);
        a.ack(serial).unwrap();
        b.wait_ack(question, T).unwrap();
        assert!(open_fds() >= baseline + 20, "the unread offers are open");
        // And some never leave the socket at all.
        a.send_snapshot("in flight", b"never received").unwrap();
    }
    assert_eq!(open_fds(), baseline);
}

#[test]
fn offers_leave_no_fd_of_the_sender_open_whatever_path_they_take() {
    let _serial = serial();
    let dir = TempDir::new();
    let path = dir.file("owned.txt", b"given away");
    let sealed = SealedFile::from_bytes("sealed", b"sealed bytes").unwrap();
    let kept = File::open(&path).unwrap();
    let writable = File::options().write(true).open(&path).unwrap();
    let baseline = open_fds();
    let (mut a, mut b) = channels();
    let with_channels = open_fds();
    // Borrowed, read-only: sent straight from the caller's fd.
    let s1 = a.send_file(kept.as_fd(), "kept", 10).unwrap();
    // Borrowed, writable: a read-only reopen, given to the queue.
    let s2 = a.send_file(writable.as_fd(), "writable", 10).unwrap();
    // Owned, read-only and writable (replaced by a reopen).
    let s3 = a
        .send_file_owned(File::open(&path).unwrap().into(), "owned", 10)
        .unwrap();
    let w: std::os::fd::OwnedFd = File::options().write(true).open(&path).unwrap().into();
    let s4 = a.send_file_owned(w, "owned-writable", 10).unwrap();
    let s5 = a.send_path(&path).unwrap();
    let s6 = a.send_sealed(&sealed, "sealed").unwrap();
    // Refused before anything is queued: the owned fd is closed anyway.
    let lie = a.send_file_owned(File::open(&path).unwrap().into(), "lie", 11);
    assert!(matches!(lie, Err(ChannelError::BadSize { .. })), "{lie:?}");
    assert_eq!(open_fds(), with_channels, "the sender holds no copy");
    for serial in [s1, s2, s3, s4, s5, s6] {
        let offer = expect_file(&mut b);
        assert_eq!(offer.serial, serial);
        let flags = nix::fcntl::fcntl(&offer.fd, nix::fcntl::FcntlArg::F_GETFL).unwrap();
        let mode = nix::fcntl::OFlag::from_bits_truncate(flags) & nix::fcntl::OFlag::O_ACCMODE;
        assert_eq!(mode, nix::fcntl::OFlag::O_RDONLY, "{}", offer.name);
        assert!(!offer.read_to_vec().unwrap().is_empty());
    }
    drop((a, b));
    assert_eq!(open_fds(), baseline);
}
