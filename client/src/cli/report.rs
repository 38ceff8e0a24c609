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
//! strings as they are, JSON-escaped by `serde_json`: a script gets the
//! exact text, and escaping for display is its business. Keys come in the
//! order of the `Serialize` structs: `version`, `type`, then the rest.

use std::io;
use std::path::Path;

use serde::Serialize;
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
    who: Who,
}

/// The `"from"` object of a JSON line.
#[derive(Debug, Clone, Serialize)]
struct Who {
    name: Option<String>,
    pid: i32,
    uid: u32,
    gid: u32,
}

/// One JSON line: `version`, `type`, then the fields of that type.
#[derive(Serialize)]
struct Line<'a, T: Serialize> {
    version: u32,
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(flatten)]
    fields: T,
}

#[derive(Serialize)]
struct Registered<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct Text<'a> {
    from: &'a Who,
    serial: u32,
    text: &'a str,
}

#[derive(Serialize)]
struct File<'a> {
    from: &'a Who,
    serial: u32,
    name: &'a str,
    size: u64,
    sha256: &'a str,
    saved_as: Option<String>,
}

#[derive(Serialize)]
struct Refused<'a> {
    from: &'a Who,
    what: &'a str,
    serial: Option<u32>,
    name: Option<&'a str>,
    reason: &'a str,
}

impl PeerInfo {
    /// The sender `peer`.
    pub fn of(peer: &Peer) -> PeerInfo {
        PeerInfo {
            label: printable(&peer.label()),
            who: Who {
                name: peer.name.clone(),
                pid: peer.credentials.pid,
                uid: peer.credentials.uid,
                gid: peer.credentials.gid,
            },
        }
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

    fn object(&self, kind: &str, fields: impl Serialize) -> Result<(), CliError> {
        let line = Line {
            version: JSON_VERSION,
            kind,
            fields,
        };
        let text = serde_json::to_string(&line).map_err(io::Error::from)?;
        self.out.line(text)
    }

    /// The name is ours.
    pub fn registered(&self, name: &str) -> Result<(), CliError> {
        if self.json {
            return self.object("registered", Registered { name });
        }
        self.out.line(format_args!("registered name {name}"))
    }

    /// A text arrived.
    pub fn text(&self, from: &PeerInfo, serial: u32, text: &str) -> Result<(), CliError> {
        if self.json {
            let fields = Text {
                from: &from.who,
                serial,
                text,
            };
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
            let fields = File {
                from: &from.who,
                serial,
                name,
                size,
                sha256,
                saved_as: saved_as.map(|p| p.to_string_lossy().into_owned()),
            };
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
            let fields = Refused {
                from: &from.who,
                what,
                serial,
                name,
                reason,
            };
            return self.object("refused", fields);
        }
        let what = match name {
            Some(name) => format!("file \"{}\"", printable(name)),
            None if serial.is_some() => "a message".to_string(),
            None => format!("peer uid {}", from.who.uid),
        };
        self.out.warn(format_args!(
            "refused {what} from {}: {}",
            from.label,
            printable(reason)
        ));
        Ok(())
    }
}
