//! What postern keeps on disk: durable file operations (the Maildir/qmail
//! commit discipline), sealing under a key, and the spool of jobs that
//! must wait.

pub mod durable;
pub mod seal;
pub mod spool;
