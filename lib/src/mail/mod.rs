//! What every stage handles: envelope addresses (RFC 5321), message checks
//! (RFC 5322), dates (RFC 5322, mbox), the job stream (postern-job(5)) and
//! enhanced status codes (RFC 3463).

pub mod address;
pub mod date;
pub mod header;
pub mod job;
pub mod message;
pub mod status;
pub mod text;
