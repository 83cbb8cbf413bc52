//! From a user name (what Postfix passes as `$user` or `${recipient}`) to
//! the mailbox file in the mailbox directory.
//!
//! The name is folded to ASCII lower case (one mailbox for `Bob` and `bob`)
//! and every byte outside `a-z 0-9 @ + _ = -` and inner dots is written as
//! `%XX`, so that a name can never leave the directory, hide as a dot file
//! or collide with the SQLite side files (`-wal`, `-shm`): the file is
//! `<encoded>.sqlite`. Names with `/`, NUL or control characters, and `.`
//! and `..`, are refused outright rather than encoded.

use std::path::{Path, PathBuf};

use crate::mail::text;

/// File name suffix of a mailbox database.
pub const SUFFIX: &str = ".sqlite";
/// Longest user name accepted, in bytes (encoded names stay under 255).
pub const MAX_USER: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("user name {user:?} cannot name a mailbox: {why}")]
pub struct BadUser {
    pub user: String,
    pub why: &'static str,
}

/// The mailbox file name for `user`, e.g. `bob@example.org.sqlite`.
pub fn file_name(user: &str) -> Result<String, BadUser> {
    let bad = |why| {
        Err(BadUser {
            user: text::clean(user).into_owned(),
            why,
        })
    };
    if user.is_empty() {
        return bad("it is empty");
    }
    if user.len() > MAX_USER {
        return bad("it is longer than 64 bytes");
    }
    if user.contains('/') {
        return bad("it contains '/'");
    }
    if user == "." || user == ".." || user.contains("..") {
        return bad("it contains '..'");
    }
    if user.chars().any(char::is_control) {
        return bad("it contains control characters");
    }
    // Every byte of a character outside the set is escaped: a non-ASCII
    // character is never plain.
    let mut out = text::percent_encode(&user.to_ascii_lowercase(), |i, c| {
        let plain = c.is_ascii_lowercase()
            || c.is_ascii_digit()
            || matches!(c, '@' | '+' | '_' | '=' | '-')
            || (c == '.' && i > 0);
        !plain
    });
    out.push_str(SUFFIX);
    Ok(out)
}

/// The mailbox file of `user` in `dir`.
pub fn path(dir: &Path, user: &str) -> Result<PathBuf, BadUser> {
    Ok(dir.join(file_name(user)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names() {
        assert_eq!(file_name("bob").unwrap(), "bob.sqlite");
        assert_eq!(
            file_name("Bob.Smith+lists@Example.org").unwrap(),
            "bob.smith+lists@example.org.sqlite"
        );
        assert_eq!(file_name("a b%").unwrap(), "a%20b%25.sqlite");
        assert_eq!(file_name(".hidden").unwrap(), "%2Ehidden.sqlite");
        assert_eq!(file_name("jörg").unwrap(), "j%C3%B6rg.sqlite");
        assert_eq!(
            path(Path::new("/var/lib/postern/mail"), "bob").unwrap(),
            Path::new("/var/lib/postern/mail/bob.sqlite")
        );
    }

    #[test]
    fn refused_names() {
        for user in ["", ".", "..", "../etc", "a/b", "/x", "a..b", "a\nb", "a\0b"] {
            assert!(file_name(user).is_err(), "{user:?} accepted");
        }
        assert!(file_name(&"x".repeat(65)).is_err());
        let e = file_name("a\nb/c").unwrap_err();
        assert!(!e.to_string().contains('\n'));
    }

    #[test]
    fn distinct_names_give_distinct_files() {
        // The encoding is injective on what it accepts (after case folding).
        let names = ["a%2E", "a.", "a%", "a-", "a_", "a=", "%2Ea"];
        let files: std::collections::HashSet<_> =
            names.iter().map(|n| file_name(n).unwrap()).collect();
        assert_eq!(files.len(), names.len());
    }
}
