//! Hostile peers and what their misbehaviour costs: fds, ids, output
//! memory, a busy owner, per-user accounting.

mod busy_owner;
mod costs;
mod fds;
mod ids;
mod output_memory;
mod watcher;
