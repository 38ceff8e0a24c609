//! The headless clipboard: our `copy`/`paste`, wl-clipboard against our
//! server, flags, progress, hostile peers on either side, and the selection the
//! server keeps after its copier leaves (`--persist`).

mod cli;
mod client_hostile;
mod flags;
mod hostile;
mod library;
mod persist;
mod persist_hostile;
mod progress;
mod wl_clipboard;
