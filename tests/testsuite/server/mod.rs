//! `waypass-server` on its own: start-up, activation, files, keymaps,
//! limits, error texts, traces and spawn mode.

mod activation;
mod broker_raw;
mod errors;
mod files;
mod keymap;
mod keymap_path;
mod lifecycle;
mod limits;
mod spawn;
mod start_errors;
mod trace;
mod xkb_env;
mod xkb_options;
