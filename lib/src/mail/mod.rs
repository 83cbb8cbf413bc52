//! What every stage handles: envelope addresses (RFC 5321), message checks
//! (RFC 5322), the job stream (postern-job(5)) and enhanced status codes
//! (RFC 3463).

pub mod address;
pub mod job;
pub mod message;
pub mod status;
pub mod text;
