//! `waypass-client paste` on a terminal: the byte counter of a large
//! paste, run on a pseudo-terminal by script(1). It shows only on a
//! terminal, the rate it shows is measured from the first byte, and ^C
//! clears its line before the paste dies of the signal.

use std::fs;
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use waypass_client::{Clipboard, Selection, Served};
use waypass_test_support::clipboard::{client, copy_with, eventually, ok, output, wl};
use waypass_test_support::{bin, wait_timeout, Server, PATIENCE};

const MIME: &str = "application/x-big";

/// Past this a paste shows its counter (8 MiB), and a bit more.
const LARGE: usize = 9 << 20;

#[test]
fn a_large_paste_shows_progress_on_a_terminal_and_never_on_a_pipe() {
    let server = Server::start(&[]);
    let data = vec![b'z'; 64 << 20];
    copy_with(wl(&server.socket, "wl-copy", &["--type", MIME]), &data);
    let shown = String::from_utf8_lossy(&ok(on_a_terminal(&server, None))).into_owned();
    assert!(shown.contains("pasting"), "{shown:?}");
    let piped = output(client(&server.socket, &["paste", "--type", MIME]));
    assert!(piped.status.success());
    assert!(
        piped.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&piped.stderr)
    );
    assert_eq!(piped.stdout.len(), data.len());
}

/// `script` running `paste --type MIME > /dev/null` on a pseudo-terminal;
/// with `pid_file`, the paste writes its pid there first.
fn on_a_terminal(server: &Server, pid_file: Option<&std::path::Path>) -> Command {
    let run = server.dir.join("run.sh");
    let pid = pid_file.map_or(String::new(), |p| format!("echo $$ > '{}'; ", p.display()));
    let line = format!(
        "{pid}exec '{}' --socket '{}' paste --type {MIME} > /dev/null\n",
        bin("waypass-client").display(),
        server.socket_arg()
    );
    fs::write(&run, line).unwrap();
    let mut cmd = Command::new("script");
    cmd.arg("-qec")
        .arg(format!("sh '{}'", run.display()))
        .arg("/dev/null");
    cmd
}

/// A copier in this process: offers [`MIME`] and serves each paste with
/// `write`, until another selection replaces it.
fn copier(
    server: &Server,
    write: impl FnMut(&mut fs::File) -> std::io::Result<()> + Send + 'static,
) -> JoinHandle<Served> {
    let mut clipboard = Clipboard::connect(server.socket.to_str()).unwrap();
    clipboard.copy(Selection::Regular, &[MIME]).unwrap();
    let mut write = write;
    thread::spawn(move || clipboard.serve(None, |_, pipe| write(pipe)).unwrap())
}

/// The rates the counter showed, as `(value, unit)`: `12.5 MiB/s`.
fn rates(transcript: &str) -> Vec<(f64, String)> {
    let mut found = Vec::new();
    for part in transcript.split("pasting ").skip(1) {
        let words: Vec<&str> = part.split_whitespace().take(4).collect();
        if let [_, _, value, unit, ..] = words[..] {
            if let (Ok(v), Some(u)) = (value.parse::<f64>(), unit.strip_suffix("/s")) {
                found.push((v, u.to_owned()));
            }
        }
    }
    found
}

#[test]
fn the_counter_shows_a_true_rate_from_its_first_line() {
    let server = Server::start(&[]);
    // At most 64 KiB per 5 ms: at most 12.5 MiB/s, whatever the machine.
    let paced = copier(&server, |pipe| {
        for _ in 0..LARGE / (64 << 10) {
            pipe.write_all(&[b'p'; 64 << 10])?;
            thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    });
    let transcript = String::from_utf8_lossy(&ok(on_a_terminal(&server, None))).into_owned();
    let shown = rates(&transcript);
    eprintln!("rates shown: {shown:?}");
    assert!(!shown.is_empty(), "no rate shown: {transcript:?}");
    for (value, unit) in &shown {
        // 1 GiB/s would be 80 times the true rate.
        assert!(
            matches!(unit.as_str(), "B" | "KiB" | "MiB") && *value < 1024.0,
            "{value} {unit}/s shown, at most 12.5 MiB/s true: {shown:?}"
        );
    }
    copy_with(client(&server.socket, &["copy", "--clear"]), b"");
    assert_eq!(paced.join().unwrap(), Served::Replaced);
}

/// Collects a child's stdout as it comes.
fn collect(child: &mut Child) -> Arc<Mutex<Vec<u8>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut stdout = child.stdout.take().unwrap();
    let sink = Arc::clone(&seen);
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    seen
}

#[test]
fn ctrl_c_clears_the_counter_line_and_ends_the_paste_by_the_signal() {
    let server = Server::start(&[]);
    // Writes 9 MiB, then keeps the pipe open until told.
    let (release, wait) = mpsc::channel::<()>();
    let wait = Mutex::new(wait);
    let holder = copier(&server, move |pipe| {
        pipe.write_all(&vec![b'h'; LARGE])?;
        let _ = wait.lock().unwrap().recv();
        Ok(())
    });
    let pid_file = server.dir.join("paste.pid");
    let mut script = on_a_terminal(&server, Some(&pid_file))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn script");
    let transcript = collect(&mut script);
    let text = || String::from_utf8_lossy(&transcript.lock().unwrap()).into_owned();
    eventually("the counter on the terminal", || text().contains("pasting"));
    let pid: i32 = fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    kill(Pid::from_raw(pid), Signal::SIGINT).unwrap();
    let status = wait_timeout(&mut script, PATIENCE).expect("the paste ignored ^C");
    // script -e passes on the paste's status: the shell's 128 + SIGINT.
    assert_eq!(status.code(), Some(130), "{status}");
    let shown = text();
    eprintln!("the terminal after ^C: {shown:?}");
    let last = shown.rfind("pasting").unwrap();
    assert!(
        shown[last..].contains("\x1b[2K"),
        "the counter's line was left: {:?}",
        &shown[last..]
    );
    release.send(()).unwrap();
    copy_with(client(&server.socket, &["copy", "--clear"]), b"");
    assert_eq!(holder.join().unwrap(), Served::Replaced);
}
