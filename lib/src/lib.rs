//! postern: small mail tools behind Postfix.
//!
//! The folders follow the chain a message takes (postern(7)):
//!
//! - `mail/`: what every stage handles — envelope addresses, message
//!   checks, the job stream (postern-job(5)), RFC 3463 status codes;
//! - `store/`: durable file operations, sealing, the spool;
//! - one folder per stage (`receiver/`, `deliverer/`): its operation, its
//!   decisions apart from its I/O;
//! - `mailbox/`: encrypted mailboxes (postern-maildb(8));
//! - `exit`, `config`, `log`: the edges every tool shares.
//!
//! The binaries in `bins/` only parse arguments, call into these modules,
//! and turn errors into exit codes.

pub mod alias;
pub mod bouncer;
pub mod config;
pub mod deliverer;
pub mod dns;
pub mod encryptor;
pub mod exit;
pub mod log;
pub mod mail;
pub mod mailbox;
pub mod receiver;
pub mod rewriter;
pub mod scanner;
pub mod stage;
pub mod store;

#[cfg(test)]
mod testing;
