//! postern-maildb's command line, defined once: `--help` and the man
//! page (see tests/man.rs) are read from here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use postern::mailbox::passphrase::Source;
use postern::mailbox::{Flags, INBOX};

use super::TOOL;
use super::exchange;

/// Per-user mailboxes in SQLite files encrypted with ChaCha20-Poly1305.
#[derive(Parser)]
#[command(name = TOOL, version)]
pub struct Cli {
    /// Configuration file (default: $POSTERN_CONFIG, then /etc/postern/postern.toml)
    #[arg(short = 'c', long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
    #[command(flatten)]
    pub mailbox: MailboxArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args)]
pub struct PassphraseArgs {
    /// Read the passphrase from file descriptor N (to its end)
    #[arg(
        long,
        value_name = "N",
        global = true,
        conflicts_with = "passphrase_file"
    )]
    pub passphrase_fd: Option<u32>,
    /// Read the passphrase from FILE, which must have mode 0600 or stricter
    #[arg(long, value_name = "FILE", global = true)]
    pub passphrase_file: Option<PathBuf>,
}

#[derive(Args)]
pub struct MailboxArgs {
    /// The mailbox of USER in the mailbox directory ([maildb] directory)
    #[arg(short = 'u', long, value_name = "USER", global = true)]
    pub user: Option<String>,
    /// The mailbox file FILE itself
    #[arg(
        short = 'm',
        long = "mailbox",
        value_name = "FILE",
        global = true,
        conflicts_with = "user"
    )]
    pub file: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Create the mailbox with the standard folders
    Init,
    /// Seal the message on standard input into USER's drop area (no passphrase)
    Deliver {
        /// The user whose mailbox receives the message
        #[arg(value_name = "USER")]
        user: String,
        /// Folder to deliver into (INBOX if it does not exist)
        #[arg(long, value_name = "FOLDER", default_value = INBOX)]
        folder: String,
    },
    /// List the messages of a folder
    List {
        /// The folder to list
        #[arg(long, value_name = "FOLDER", default_value = INBOX)]
        folder: String,
        /// One JSON array instead of lines of tab-separated fields
        #[arg(long)]
        json: bool,
    },
    /// Write a message, exactly as delivered, to standard output
    Show {
        /// The message's UID in its folder
        uid: u32,
        /// The folder the message is in
        #[arg(long, value_name = "FOLDER", default_value = INBOX)]
        folder: String,
    },
    /// Find messages containing every word of QUERY
    Search {
        /// Words to look for; from:, to:, subject:, body: limit a word to a field
        #[arg(value_name = "QUERY", required = true, num_args = 1..)]
        query: Vec<String>,
        /// Only in this folder (default: all)
        #[arg(long, value_name = "FOLDER")]
        folder: Option<String>,
        /// Only the N best matches (default: all)
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        /// One JSON array instead of lines of tab-separated fields
        #[arg(long)]
        json: bool,
    },
    /// Set or clear flags of a message (seen, answered, flagged, deleted, draft)
    Flag {
        /// The message's UID in its folder
        uid: u32,
        /// The folder the message is in
        #[arg(long, value_name = "FOLDER", default_value = INBOX)]
        folder: String,
        /// Flag to set (repeatable)
        #[arg(long = "set", value_name = "FLAG", value_parser = parse_flag)]
        set: Vec<Flags>,
        /// Flag to clear (repeatable)
        #[arg(long = "clear", value_name = "FLAG", value_parser = parse_flag)]
        clear: Vec<Flags>,
    },
    /// Move a message to another folder (it gets a new UID there)
    Move {
        /// The message's UID in its folder
        uid: u32,
        /// Destination folder
        #[arg(value_name = "DEST")]
        dest: String,
        /// The folder the message is in
        #[arg(long, value_name = "FOLDER", default_value = INBOX)]
        folder: String,
    },
    /// Delete a message for good
    Delete {
        /// The message's UID in its folder
        uid: u32,
        /// The folder the message is in
        #[arg(long, value_name = "FOLDER", default_value = INBOX)]
        folder: String,
    },
    /// List the folders with their counts, or create one
    Folders {
        /// Create the folder NAME
        #[arg(long, value_name = "NAME")]
        create: Option<String>,
        /// One JSON array instead of lines of tab-separated fields
        #[arg(long)]
        json: bool,
    },
    /// Check the encryption, the schema and the integrity of every page
    Check,
    /// Change the passphrase: re-encrypt a copy, then put it in place
    Passwd {
        /// Read the new passphrase from file descriptor N (to its end)
        #[arg(long, value_name = "N", conflicts_with = "new_passphrase_file")]
        new_passphrase_fd: Option<u32>,
        /// Read the new passphrase from FILE (mode 0600 or stricter)
        #[arg(long, value_name = "FILE")]
        new_passphrase_file: Option<PathBuf>,
    },
    /// Remove the mailbox, its side files and its drop area for good
    Destroy {
        /// Really destroy it (without this, nothing is removed)
        #[arg(long)]
        yes: bool,
    },
    /// Show how much room the mailbox takes and its limit (no passphrase)
    Quota {
        /// One JSON object instead of lines
        #[arg(long)]
        json: bool,
    },
    #[command(flatten)]
    Exchange(exchange::ExchangeCommand),
}

fn parse_flag(s: &str) -> Result<Flags, String> {
    Flags::parse(s).ok_or_else(|| {
        format!("unknown flag {s:?} (one of seen, answered, flagged, deleted, draft)")
    })
}

impl PassphraseArgs {
    /// The passphrase's source, if one is named.
    pub fn source(&self) -> Option<Source> {
        Source::from_options(self.passphrase_fd, self.passphrase_file.as_deref())
    }
}
