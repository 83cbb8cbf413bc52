//! postern-rewriter(1) as a library operation: aliases resolved for every
//! recipient in one of our domains, SRS for the envelope sender of mail
//! forwarded off them (and reversed for bounces coming back), the trace
//! headers, and rate limits.

pub mod srs;
