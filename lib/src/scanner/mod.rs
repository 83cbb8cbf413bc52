//! postern-scanner(1) (issue 12, being built): content protection that
//! looks at attachments' types and at the sending server, not at what
//! people write.

pub mod attachments;
pub mod clamd;
pub mod dnsbl;
pub mod phishing;
pub mod sender;
