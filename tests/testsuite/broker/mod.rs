//! The broker (`waypass_broker_v1`) through `waypass-client`'s broker
//! commands.

mod cli;
