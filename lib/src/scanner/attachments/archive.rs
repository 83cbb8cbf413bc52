//! ZIP archives (PKWARE APPNOTE 6.3), opened one level deep in memory:
//! entry names from the central directory, the first bytes of small
//! entries, never a file on disk, never a nested archive.

use std::io::{Cursor, Read};

use super::{Limits, Reason, magic, name_reasons};

/// What one archive held. `unreadable`: the archive could not be listed.
#[derive(Debug, Default)]
pub struct Contents {
    pub reasons: Vec<Reason>,
    pub unreadable: bool,
}

/// `PK\x03\x04`: a local file header, the start of every non-empty ZIP
/// (and of the formats built on it: jar, apk, docx, xlsx, odt).
pub fn is_zip(data: &[u8]) -> bool {
    data.starts_with(b"PK\x03\x04")
}

/// The entry count and central directory size the end record declares,
/// read before the zip crate allocates anything for the entries.
fn declared_entries(data: &[u8]) -> Option<(u64, u64)> {
    const EOCD: &[u8] = b"PK\x05\x06";
    // The record is 22 bytes plus a comment of at most 65535.
    let from = data.len().saturating_sub(22 + 65_535);
    let at = from + memchr::memmem::rfind(&data[from..], EOCD)?;
    let record = data.get(at..at + 22)?;
    let entries = u16::from_le_bytes([record[10], record[11]]);
    let size = u32::from_le_bytes([record[12], record[13], record[14], record[15]]);
    Some((u64::from(entries), u64::from(size)))
}

/// The entries of the ZIP in `data`, checked by name and by their first
/// bytes; a bomb is reported and not read further.
pub fn scan(data: &[u8], limits: &Limits) -> Contents {
    let mut out = Contents::default();
    let max_entries = limits.zip_max_entries as u64;
    // A central directory entry is at least 46 bytes.
    if let Some((entries, size)) = declared_entries(data)
        && (entries > max_entries || size / 46 > max_entries)
    {
        out.reasons.push(Reason::ZipBomb(format!(
            "declares more than {max_entries} entries"
        )));
        return out;
    }
    let Ok(mut archive) = zip::ZipArchive::new(Cursor::new(data)) else {
        out.unreadable = true;
        return out;
    };
    if archive.len() > limits.zip_max_entries {
        out.reasons.push(Reason::ZipBomb(format!(
            "{} entries, more than {max_entries}",
            archive.len()
        )));
        return out;
    }
    let mut total: u64 = 0;
    let mut budget = limits.zip_read_budget;
    let mut encrypted = false;
    let mut peek = Vec::with_capacity(limits.zip_peek);
    for index in 0..archive.len() {
        let Ok(entry) = archive.by_index_raw(index) else {
            out.unreadable = true;
            continue;
        };
        if entry.is_dir() {
            continue;
        }
        let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        let size = entry.size();
        let packed = entry.compressed_size().max(1);
        total = total.saturating_add(size);
        if size > limits.zip_ratio_floor && size / packed > limits.zip_max_ratio {
            out.reasons.push(Reason::ZipBomb(format!(
                "entry {:?} inflates {packed} bytes to {size} ({}:1)",
                super::for_reply(&name),
                size / packed
            )));
            return out;
        }
        if total > limits.zip_max_total {
            out.reasons.push(Reason::ZipBomb(format!(
                "entries inflate to more than {} bytes",
                limits.zip_max_total
            )));
            return out;
        }
        encrypted |= entry.encrypted();
        let skip_content = entry.encrypted();
        drop(entry);
        let mut reasons = name_reasons(&name);
        if !skip_content && budget > 0 {
            peek.clear();
            let want = (limits.zip_peek as u64).min(budget);
            // Unsupported methods (bzip2, lzma, zstd) and broken entries:
            // the name was checked, the content cannot be.
            if let Ok(file) = archive.by_index(index)
                && file.take(want).read_to_end(&mut peek).is_ok()
            {
                budget = budget.saturating_sub(peek.len() as u64);
                if let Some(kind) = magic::executable(&peek, true) {
                    reasons.push(Reason::Magic(kind));
                }
            }
        }
        out.reasons
            .extend(reasons.into_iter().map(|reason| Reason::InArchive {
                entry: name.clone(),
                reason: Box::new(reason),
            }));
    }
    if encrypted {
        out.reasons.push(Reason::EncryptedArchive);
    }
    out
}
