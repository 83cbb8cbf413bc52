//! An mbox source: any variant [`crate::mailbox::mbox`] reads, streamed.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use super::{Arrival, Incoming, Item, Source};
use crate::mailbox::exchange::ExchangeError;
use crate::mailbox::mbox::{MboxError, MboxReader};

/// An mbox file, read one message at a time.
pub(super) struct MboxSource {
    path: PathBuf,
    reader: MboxReader<BufReader<File>>,
}

impl MboxSource {
    /// `limit`: larger messages are counted, not held.
    pub(super) fn new(path: &Path, file: File, limit: usize) -> MboxSource {
        MboxSource {
            path: path.to_owned(),
            reader: MboxReader::new(BufReader::with_capacity(256 * 1024, file), limit),
        }
    }
}

impl Source for MboxSource {
    fn next_item(&mut self) -> Result<Option<Item>, ExchangeError> {
        match self.reader.next_message() {
            Ok(None) => Ok(None),
            Ok(Some(m)) if m.oversized => Ok(Some(Item::TooLarge)),
            Ok(Some(m)) => Ok(Some(Item::Message(Incoming {
                raw: m.raw,
                flags: m.flags,
                arrival: Arrival::Hints {
                    before: m.date,
                    after: None,
                },
                folder: None,
                truncated: m.truncated,
            }))),
            Err(MboxError::NotMbox) => Err(ExchangeError::bad(
                &self.path,
                "not an mbox, Maildir, directory of .eml files or SQLite mailbox (the first \
                 line does not start with \"From \")",
            )),
            Err(MboxError::Io(e)) => Err(ExchangeError::io(&self.path, "read", e)),
        }
    }
}
