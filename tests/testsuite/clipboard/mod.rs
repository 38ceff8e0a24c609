//! The headless clipboard: our `copy`/`paste`, wl-clipboard against our
//! server, flags, progress, and hostile peers on either side.

mod cli;
mod client_hostile;
mod flags;
mod hostile;
mod library;
mod progress;
mod wl_clipboard;
