//! What postern keeps on disk: durable file operations (the Maildir/qmail
//! commit discipline), sealing under a key, the spool of jobs that must
//! wait, and the checks on files that hold secrets.

pub mod durable;
pub mod private;
pub mod seal;
pub mod sealed_file;
pub mod spool;
