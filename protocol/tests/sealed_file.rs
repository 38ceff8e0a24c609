//! [`SealedFile`], [`inspect_fd`] and [`ReadOnlyMap`] against the real
//! kernel: the seals hold, the read-only reopen is what its docs say, and
//! another process can map and read the file.

use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

use memmap2::MmapOptions;
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag, SealFlag};
use nix::unistd::{ftruncate, lseek, write, Whence};
use waypass_protocol::{inspect_fd, ReadOnlyMap, SealError, SealedFile, Seals};

const CONTENT: &[u8] = b"xkb_keymap {\n\txkb_keycodes \"evdev\" { };\n};\n\0";

fn sealed() -> SealedFile {
    SealedFile::from_bytes("waypass-test", CONTENT).unwrap()
}

fn len() -> i64 {
    CONTENT.len() as i64
}

fn dev_ino(fd: BorrowedFd<'_>) -> (u64, u64) {
    let st = nix::sys::stat::fstat(fd).unwrap();
    (st.st_dev, st.st_ino)
}

/// A memfd that allows sealing but has no seals yet.
fn unsealed_memfd() -> std::fs::File {
    let memfd = memfd::MemfdOptions::default()
        .allow_sealing(true)
        .create("waypass-unsealed")
        .unwrap();
    memfd.as_file().set_len(CONTENT.len() as u64).unwrap();
    memfd.into_file()
}

/// FNV-1a, to compare contents across processes.
fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[test]
fn writing_and_resizing_a_sealed_file_fail_with_eperm() {
    let file = sealed();
    let fd = file.as_fd();
    assert_eq!(write(fd, b"x"), Err(Errno::EPERM));
    assert_eq!(nix::sys::uio::pwrite(fd, b"x", 0), Err(Errno::EPERM));
    assert_eq!(ftruncate(fd, 1), Err(Errno::EPERM), "shrink");
    assert_eq!(ftruncate(fd, 2 * len()), Err(Errno::EPERM), "grow");
    let map = ReadOnlyMap::new(fd, CONTENT.len() as u64).unwrap();
    assert_eq!(&map[..], CONTENT);
}

#[test]
fn a_writable_shared_mapping_of_a_sealed_file_fails_with_eperm() {
    let file = sealed();
    // SAFETY: the mapping is expected to fail; were it made, this test
    // would be its only user and would not touch it.
    let map = unsafe { MmapOptions::new().len(CONTENT.len()).map_mut(&file.as_fd()) };
    assert_eq!(map.unwrap_err().raw_os_error(), Some(Errno::EPERM as i32));
}

#[test]
fn the_same_operations_succeed_on_an_unsealed_memfd() {
    // The control for the two tests above: without seals nothing fails.
    let file = unsealed_memfd();
    let fd = file.as_fd();
    assert_eq!(write(fd, b"x"), Ok(1));
    ftruncate(fd, 1).unwrap();
    ftruncate(fd, 2 * len()).unwrap();
    // SAFETY: this test owns the file and is the mapping's only user.
    let map = unsafe { MmapOptions::new().len(CONTENT.len()).map_mut(&fd) };
    assert!(map.is_ok());
}

#[test]
fn no_seal_can_be_added_to_a_sealed_file() {
    let file = sealed();
    let fd = file.as_fd();
    let before = inspect_fd(fd).unwrap().seals;
    assert_eq!(
        before,
        Some(Seals(
            Seals::SEAL.0 | Seals::SHRINK.0 | Seals::GROW.0 | Seals::WRITE.0
        ))
    );
    for flags in [
        SealFlag::F_SEAL_FUTURE_WRITE,
        SealFlag::F_SEAL_WRITE,
        SealFlag::empty(),
    ] {
        let added = fcntl(fd, FcntlArg::F_ADD_SEALS(flags));
        assert_eq!(added, Err(Errno::EPERM), "{flags:?}");
    }
    assert_eq!(inspect_fd(fd).unwrap().seals, before);

    // The control: without F_SEAL_SEAL a seal can be added.
    let open = unsealed_memfd();
    fcntl(open.as_fd(), FcntlArg::F_ADD_SEALS(SealFlag::F_SEAL_GROW)).unwrap();
    assert_eq!(inspect_fd(open.as_fd()).unwrap().seals, Some(Seals::GROW));
}

#[test]
fn a_read_only_reopen_is_the_same_file_with_its_own_offset() {
    let file = sealed();
    let a = file.reopen_read_only().unwrap();
    let b = file.reopen_read_only().unwrap();
    assert_eq!(dev_ino(a.as_fd()), dev_ino(file.as_fd()));
    assert_eq!(dev_ino(b.as_fd()), dev_ino(file.as_fd()));

    // The memfd's own offset sits at EOF after writing.
    assert_eq!(lseek(file.as_fd(), 0, Whence::SeekCur), Ok(len()));
    let (mut a, mut b) = (std::fs::File::from(a), std::fs::File::from(b));
    let mut head = [0u8; 4];
    a.read_exact(&mut head).unwrap();
    assert_eq!(head, CONTENT[..4]);
    b.read_exact(&mut head).unwrap();
    assert_eq!(head, CONTENT[..4], "b's offset moved with a's");
    a.read_exact(&mut head).unwrap();
    assert_eq!(head, CONTENT[4..8]);
    assert_eq!(lseek(file.as_fd(), 0, Whence::SeekCur), Ok(len()));

    let access = OFlag::from_bits_truncate(fcntl(a.as_fd(), FcntlArg::F_GETFL).unwrap());
    assert_eq!(access & OFlag::O_ACCMODE, OFlag::O_RDONLY);
    let cloexec = FdFlag::from_bits_truncate(fcntl(a.as_fd(), FcntlArg::F_GETFD).unwrap());
    assert!(cloexec.contains(FdFlag::FD_CLOEXEC));
    assert_eq!(write(a.as_fd(), b"x"), Err(Errno::EBADF));
}

#[test]
fn a_read_only_reopen_can_be_mapped_shared() {
    let file = sealed();
    let fd = file.reopen_read_only().unwrap();
    // SAFETY: the file is sealed against every change, so the shared
    // mapping cannot change or shrink under us.
    let map = unsafe { MmapOptions::new().len(CONTENT.len()).map(&fd.as_fd()) }.unwrap();
    assert_eq!(&map[..], CONTENT);
}

#[test]
fn read_only_map_checks_the_size_against_the_file() {
    let file = sealed();
    let fd = file.reopen_read_only().unwrap();
    let n = CONTENT.len() as u64;
    assert!(matches!(
        ReadOnlyMap::new(fd.as_fd(), 0),
        Err(SealError::EmptySize)
    ));
    match ReadOnlyMap::new(fd.as_fd(), n + 1) {
        Err(SealError::SizeBeyondFile { size, file_size }) => {
            assert_eq!((size, file_size), (n + 1, n));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        ReadOnlyMap::new(fd.as_fd(), u64::MAX),
        Err(SealError::SizeBeyondFile { .. })
    ));
    assert_eq!(&ReadOnlyMap::new(fd.as_fd(), n).unwrap()[..], CONTENT);
    assert_eq!(&ReadOnlyMap::new(fd.as_fd(), 3).unwrap()[..], &CONTENT[..3]);
}

#[test]
fn read_only_map_works_on_an_unsealed_file_too() {
    let file = unsealed_memfd();
    nix::sys::uio::pwrite(file.as_fd(), CONTENT, 0).unwrap();
    let map = ReadOnlyMap::new(file.as_fd(), CONTENT.len() as u64).unwrap();
    assert_eq!(&map[..], CONTENT);
}

#[test]
fn inspect_fd_reports_what_the_fd_is() {
    let file = sealed();
    let info = inspect_fd(file.as_fd()).unwrap();
    assert!(info.memfd);
    assert_eq!(info.size, CONTENT.len() as u64);
    assert_eq!((info.dev, info.ino), dev_ino(file.as_fd()));
    let seals = info.seals.unwrap();
    assert_eq!(seals.names(), ["seal", "shrink", "grow", "write"]);

    let (read_end, _write_end) = nix::unistd::pipe().unwrap();
    let pipe = inspect_fd(read_end.as_fd()).unwrap();
    assert!(!pipe.memfd);
    assert_eq!(pipe.seals, None, "pipes do not support sealing");

    let plain = memfd::MemfdOptions::default().create("plain").unwrap();
    let plain = inspect_fd(plain.as_file().as_fd()).unwrap();
    assert!(plain.memfd);
    // Without MFD_ALLOW_SEALING a memfd starts with F_SEAL_SEAL.
    assert_eq!(plain.seals, Some(Seals::SEAL));
    let open = inspect_fd(unsealed_memfd().as_fd()).unwrap();
    assert_eq!(open.seals, Some(Seals(0)));
}

#[test]
fn seal_names_come_in_a_fixed_order() {
    let all = Seals(0x1f);
    assert_eq!(
        all.names(),
        ["seal", "shrink", "grow", "write", "future_write"]
    );
    assert_eq!(
        Seals(Seals::FUTURE_WRITE.0 | Seals::SHRINK.0).names(),
        ["shrink", "future_write"]
    );
    assert!(Seals(0).names().is_empty());
    assert!(all.contains(Seals::WRITE) && !Seals::SEAL.contains(Seals::WRITE));
}

#[test]
fn errors_display_lowercase_and_keep_the_io_error_as_source() {
    use std::error::Error as _;
    let io = || io::Error::from(io::ErrorKind::PermissionDenied);
    let all = [
        SealError::Create(io()),
        SealError::Write(io()),
        SealError::AddSeals(io()),
        SealError::Inspect(io()),
        SealError::Reopen(io()),
        SealError::Map(io()),
        SealError::EmptySize,
        SealError::SizeBeyondFile {
            size: 9,
            file_size: 4,
        },
    ];
    for e in &all {
        let text = e.to_string();
        assert!(text.starts_with(|c: char| c.is_lowercase()), "{text}");
        assert!(!text.ends_with('.') && !text.contains("denied"), "{text}");
        assert_eq!(
            e.source().is_some(),
            !text.starts_with("announced"),
            "{text}"
        );
    }
    assert_eq!(
        all[7].to_string(),
        "announced size 9 is beyond the file size 4"
    );
}

/// Set in the child process that `another_process_maps_and_reads_the_file`
/// starts: the number of the fd it inherited.
const CHILD_FD: &str = "WAYPASS_SEALED_CHILD_FD";
const CHILD_TEST: &str = "child_side_of_another_process_maps_and_reads_the_file";

#[test]
fn another_process_maps_and_reads_the_file() {
    let file = sealed();
    let fd = file.reopen_read_only().unwrap();
    let raw = fd.as_raw_fd();
    let mut child = Command::new(std::env::current_exe().unwrap());
    child
        .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
        .env(CHILD_FD, raw.to_string());
    // SAFETY: the closure runs in the forked child just before exec, where
    // only async-signal-safe calls are allowed: fcntl is one, and nix's
    // wrapper does not allocate. `raw` is open there, because the child's
    // fd table is a copy of ours taken while `fd` is alive.
    unsafe {
        child.pre_exec(move || {
            let fd = BorrowedFd::borrow_raw(raw);
            fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty()))
                .map(drop)
                .map_err(io::Error::from)
        });
    }
    let out = child.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = format!(
        "child: checksum={:016x} size={} memfd=true seals=seal,shrink,grow,write",
        checksum(CONTENT),
        CONTENT.len()
    );
    assert!(stdout.contains(&expected), "{stdout}");
    // Only the child's copy lost close-on-exec.
    let flags = FdFlag::from_bits_truncate(fcntl(fd.as_fd(), FcntlArg::F_GETFD).unwrap());
    assert!(flags.contains(FdFlag::FD_CLOEXEC));
}

/// The child side of `another_process_maps_and_reads_the_file`; in a normal
/// run (no fd handed over) it has nothing to do.
#[test]
fn child_side_of_another_process_maps_and_reads_the_file() {
    let Ok(raw) = std::env::var(CHILD_FD) else {
        return;
    };
    let raw: RawFd = raw.parse().unwrap();
    // SAFETY: the parent handed this process exactly this fd, with
    // close-on-exec cleared on it alone; nothing else here refers to it.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let info = inspect_fd(fd.as_fd()).unwrap();
    let map = ReadOnlyMap::new(fd.as_fd(), info.size).unwrap();
    println!(
        "child: checksum={:016x} size={} memfd={} seals={}",
        checksum(&map),
        map.len(),
        info.memfd,
        info.seals.map(|s| s.names().join(",")).unwrap_or_default()
    );
}

#[test]
fn a_file_from_a_reader_holds_what_it_gave_and_is_sealed_whole() {
    let mut pipe_like = io::repeat(b'z').take(100_000);
    let file = SealedFile::from_reader("from-reader", &mut pipe_like).unwrap();
    assert_eq!(file.size(), 100_000);
    let seals = inspect_fd(file.as_fd())
        .unwrap()
        .seals
        .expect("a memfd has seals");
    for seal in [Seals::SHRINK, Seals::GROW, Seals::WRITE, Seals::SEAL] {
        assert!(seals.contains(seal), "{:?}", seals.names());
    }
    let mut back = Vec::new();
    std::fs::File::from(file.reopen_read_only().unwrap())
        .read_to_end(&mut back)
        .unwrap();
    assert!(back.len() == 100_000 && back.iter().all(|&b| b == b'z'));
    let owned = OwnedFd::from(file);
    assert_eq!(write(&owned, b"more"), Err(Errno::EPERM));
}
