//! `waypass-client listen`: its channels, its output, its life cycle, and
//! hostile peers that send it what `send` never would.

mod channels;
mod hostile;
mod lifecycle;
mod output;
mod support;
