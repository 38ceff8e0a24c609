//! A raw clipboard watcher for the hostile-peer tests: one connection with
//! data-control devices that reads everything the server sends, as fast as
//! it can, and destroys each offer as soon as a newer selection replaces
//! it (the perfect reader). It counts what it was told.
//!
//! What it is not: a paster (it never receives data) or a copier.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use waypass_test_support::raw::{ext_manager_setup, msg, u};
use waypass_test_support::PATIENCE;

/// The first device's id; a watcher's devices follow.
pub const FIRST_DEVICE: u32 = 5;

/// What a watcher was told.
#[derive(Debug, Default, Clone)]
pub struct Told {
    /// `data_offer` events, all devices.
    pub offers: usize,
    /// `selection` and `primary_selection` events, all devices.
    pub selections: usize,
    /// The types of the regular selection of the first device, as last
    /// announced (empty for none).
    pub types: Vec<String>,
    /// `wl_callback.done` serials seen, by callback id.
    pub done: usize,
    /// The server hung up, or sent `wl_display.error` (its text).
    pub gone: Option<String>,
    /// Bytes received.
    pub bytes: usize,
}

/// A connection with `devices` ext data-control devices, read by a thread.
pub struct Watcher {
    told: Arc<Mutex<Told>>,
    out: Arc<Mutex<UnixStream>>,
    callback: u32,
    reader: Option<JoinHandle<()>>,
}

impl Watcher {
    /// Connects, binds the seat and the ext manager, creates `devices`
    /// devices, and waits until the server has answered all that.
    pub fn start(socket: &Path, devices: u32) -> Watcher {
        let stream = UnixStream::connect(socket).expect("connect");
        let mut setup = ext_manager_setup();
        for d in 0..devices {
            setup.extend(msg(4, 1, &[u(FIRST_DEVICE + d), u(3)])); // get_data_device
        }
        let out = Arc::new(Mutex::new(stream.try_clone().unwrap()));
        let told = Arc::new(Mutex::new(Told::default()));
        let reader = {
            let (told, out) = (Arc::clone(&told), Arc::clone(&out));
            thread::spawn(move || read_all(stream, told, out, devices))
        };
        let watcher = Watcher {
            told,
            out,
            callback: FIRST_DEVICE + devices,
            reader: Some(reader),
        };
        watcher.send(&setup);
        watcher.sync();
        watcher
    }

    /// Sends raw requests (a server that hung up is not an error here).
    pub fn send(&self, bytes: &[u8]) {
        let _ = self.out.lock().unwrap().write_all(bytes);
    }

    /// A `wl_display.sync` round trip: everything the server sent before
    /// its answer has been read. Returns `false` if the server hung up.
    pub fn sync(&self) -> bool {
        let before = self.told().done;
        self.send(&msg(1, 0, &[u(self.callback)]));
        let start = Instant::now();
        loop {
            let told = self.told();
            if told.done > before {
                return true;
            }
            if told.gone.is_some() {
                return false;
            }
            assert!(start.elapsed() < PATIENCE, "no answer to sync");
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// What it was told so far.
    pub fn told(&self) -> Told {
        self.told.lock().unwrap().clone()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.out.lock().unwrap().shutdown(std::net::Shutdown::Both);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// The reader thread: parses events, counts them, destroys replaced
/// offers at once.
fn read_all(
    mut stream: UnixStream,
    told: Arc<Mutex<Told>>,
    out: Arc<Mutex<UnixStream>>,
    devices: u32,
) {
    let mut buf = vec![0u8; 1 << 16];
    let mut pending = Vec::new();
    // Each offer's types, and each device's current offer.
    let mut types: HashMap<u32, Vec<String>> = HashMap::new();
    let mut current: HashMap<(u32, u16), u32> = HashMap::new();
    let is_device = |id: u32| (FIRST_DEVICE..FIRST_DEVICE + devices).contains(&id);
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => {
                let mut t = told.lock().unwrap();
                t.gone.get_or_insert_with(|| "hung up".into());
                return;
            }
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        let mut t = told.lock().unwrap();
        t.bytes += n;
        let mut at = 0;
        while pending.len() >= at + 8 {
            let word = |i: usize| u32::from_ne_bytes(pending[i..i + 4].try_into().unwrap());
            let (sender, head) = (word(at), word(at + 4));
            let (size, opcode) = ((head >> 16) as usize, (head & 0xffff) as u16);
            if size < 8 || pending.len() < at + size {
                break;
            }
            let body = &pending[at + 8..at + size];
            let arg = |i: usize| u32::from_ne_bytes(body[i..i + 4].try_into().unwrap());
            match (sender, opcode) {
                (1, 0) => {
                    let len = arg(8) as usize;
                    let text = String::from_utf8_lossy(&body[12..12 + len.saturating_sub(1)]);
                    t.gone = Some(text.into_owned());
                }
                (id, 0) if is_device(id) => {
                    t.offers += 1;
                    types.insert(arg(0), Vec::new());
                }
                (id, 1 | 3) if is_device(id) => {
                    t.selections += 1;
                    let offer = arg(0);
                    if let Some(old) = current.insert((id, opcode), offer) {
                        if old != 0 && old != offer {
                            types.remove(&old);
                            // offer.destroy: replaced, so no longer wanted.
                            let _ = out.lock().unwrap().write_all(&msg(old, 1, &[]));
                        }
                    }
                    if (id, opcode) == (FIRST_DEVICE, 1) {
                        t.types = types.get(&offer).cloned().unwrap_or_default();
                    }
                }
                (id, 0) if types.contains_key(&id) => {
                    let len = arg(0) as usize;
                    let mime = String::from_utf8_lossy(&body[4..4 + len.saturating_sub(1)]);
                    types.get_mut(&id).unwrap().push(mime.into_owned());
                }
                (id, 0) if id >= FIRST_DEVICE + devices && id < 0xff00_0000 => t.done += 1,
                _ => {}
            }
            at += size;
        }
        pending.drain(..at);
    }
}
