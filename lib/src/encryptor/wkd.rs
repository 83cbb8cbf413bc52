//! Web Key Directory lookups.
