//! Load and malformed input: many clients, churn, slow readers, `EMFILE`,
//! and every malformed message the server must refuse.

mod churn;
mod client_input;
mod client_keymap_shrink;
mod emfile;
mod malformed;
mod slow_client;
