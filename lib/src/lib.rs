//! postern: small mail tools behind Postfix.
//!
//! One module per concept; the binaries in `bins/` only parse arguments,
//! call into these modules, and turn errors into exit codes.

pub mod address;
pub mod config;
pub mod deliver;
pub mod durable;
pub mod exit;
pub mod job;
pub mod log;
pub mod mailbox;
pub mod message;
pub mod passphrase;
pub mod receive;
pub mod seal;
pub mod smtp;
pub mod spool;

#[cfg(test)]
mod testing;
