//! What `listen` prints: one line per received message, file or refusal,
//! for people (escaped text) or, with `--json`, one JSON object per line
//! for scripts (the fields are documented in `docs/json.md`).
//!
//! What it is: [`Report`], over [`Out`], and [`PeerInfo`], who sent something.
//! What it is not: the loop or the peer protocol. Warnings about a peer
//! (a broken channel) go to stderr in both modes.
//!
//! # Implementation notes
//!
//! Human lines pass every peer-chosen string through [`printable`], so no
//! control or format character reaches the terminal. JSON lines carry the
//! strings as they are (JSON-escaped by `serde_json`): a script gets the
//! exact text, and escaping for display is its business.

use std::path::Path;

use serde_json::{json, Value};
use waypass_client::Peer;

use super::story::{printable, Out};
use super::CliError;

/// The version of the JSON lines' schema (`"version"` in every object).
pub(super) const JSON_VERSION: u32 = 1;

/// Who sent something: what the server told us of the peer.
#[derive(Debug, Clone)]
pub(super) struct PeerInfo {
    /// The label used in human lines: its name, else `pid N`.
    pub label: String,
    name: Option<String>,
    pid: i32,
    uid: u32,
    gid: u32,
}

impl PeerInfo {
    /// The sender `peer`.
    pub fn of(peer: &Peer) -> PeerInfo {
        PeerInfo {
            label: printable(&peer.label()),
            name: peer.name.clone(),
            pid: peer.credentials.pid,
            uid: peer.credentials.uid,
            gid: peer.credentials.gid,
        }
    }

    fn json(&self) -> Value {
        json!({"name": self.name, "pid": self.pid, "uid": self.uid, "gid": self.gid})
    }
}

/// The lines of `listen`, human or JSON.
pub(super) struct Report<'a> {
    out: &'a Out,
    json: bool,
}

impl<'a> Report<'a> {
    /// Lines on `out`; JSON objects if `json`.
    pub fn new(out: &'a Out, json: bool) -> Self {
        Report { out, json }
    }

    fn object(&self, kind: &str, mut fields: Value) -> Result<(), CliError> {
        let mut all = json!({"version": JSON_VERSION, "type": kind});
        if let (Some(all), Some(fields)) = (all.as_object_mut(), fields.as_object_mut()) {
            all.append(fields);
        }
        self.out.line(all)
    }

    /// The name is ours.
    pub fn registered(&self, name: &str) -> Result<(), CliError> {
        if self.json {
            return self.object("registered", json!({"name": name}));
        }
        self.out.line(format_args!("registered name {name}"))
    }

    /// A text arrived.
    pub fn text(&self, from: &PeerInfo, serial: u32, text: &str) -> Result<(), CliError> {
        if self.json {
            let fields = json!({"from": from.json(), "serial": serial, "text": text});
            return self.object("text", fields);
        }
        self.out
            .line(format_args!("from {}: {}", from.label, printable(text)))
    }

    /// A file was read (and saved).
    pub fn file(
        &self,
        from: &PeerInfo,
        serial: u32,
        name: &str,
        size: u64,
        sha256: &str,
        saved_as: Option<&Path>,
    ) -> Result<(), CliError> {
        if self.json {
            let fields = json!({
                "from": from.json(), "serial": serial, "name": name, "size": size,
                "sha256": sha256, "saved_as": saved_as.map(|p| p.to_string_lossy()),
            });
            return self.object("file", fields);
        }
        let shown = printable(name);
        let mut line = format!(
            "file from {}: {shown} {size} bytes sha256={sha256}",
            from.label
        );
        if let Some(path) = saved_as {
            line.push_str(&format!("\nsaved {}", printable(&path.to_string_lossy())));
        }
        self.out.block(&line)
    }

    /// A message (`serial`), file (`name`) or the whole peer (neither) was
    /// refused, and the peer told why.
    pub fn refused(
        &self,
        from: &PeerInfo,
        serial: Option<u32>,
        name: Option<&str>,
        reason: &str,
    ) -> Result<(), CliError> {
        if self.json {
            let what = match (serial, name) {
                (_, Some(_)) => "file",
                (Some(_), None) => "text",
                (None, None) => "peer",
            };
            let fields = json!({
                "from": from.json(), "serial": serial, "what": what, "name": name,
                "reason": reason,
            });
            return self.object("refused", fields);
        }
        let what = match name {
            Some(name) => format!("file \"{}\"", printable(name)),
            None if serial.is_some() => "a message".to_string(),
            None => format!("peer uid {}", from.uid),
        };
        self.out.warn(format_args!(
            "refused {what} from {}: {}",
            from.label,
            printable(reason)
        ));
        Ok(())
    }
}
