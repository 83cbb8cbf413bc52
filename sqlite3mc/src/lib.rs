//! SQLite3 Multiple Ciphers (<https://utelle.github.io/SQLite3MultipleCiphers/>)
//! for rusqlite.
//!
//! The build script compiles the amalgamation shipped by the `sqlite3mc-src`
//! crate into a static `libsqlite3.a`; libsqlite3-sys (without its `bundled`
//! feature) then links it through its own `-lsqlite3`. A crate that uses
//! rusqlite must depend on this crate *and* refer to [`linked_version`] (or
//! any symbol here), or the linker may take the system's plain libsqlite3,
//! which silently ignores `PRAGMA key` and writes plaintext.

use std::ffi::{CStr, c_char, c_int, c_void};

unsafe extern "C" {
    /// SQLite3MC's own version string, e.g. `SQLite3 Multiple Ciphers 2.6.1`.
    fn sqlite3mc_version() -> *const c_char;
    fn sqlite3_key_v2(
        db: *mut c_void,
        schema: *const c_char,
        key: *const c_void,
        n: c_int,
    ) -> c_int;
    fn sqlite3_rekey_v2(
        db: *mut c_void,
        schema: *const c_char,
        key: *const c_void,
        n: c_int,
    ) -> c_int;
}

/// Sets the passphrase of the `main` database of a connection, as
/// `PRAGMA key='…'` does, but without the passphrase ever being part of an
/// SQL text (which would need quoting and leave copies behind). Returns an
/// SQLite result code (0 is SQLITE_OK). The cipher is the one chosen before
/// with `PRAGMA cipher`.
///
/// # Safety
/// `db` must be a valid, open `sqlite3*` connection handle (for example
/// `rusqlite::Connection::handle()`), not used by another thread meanwhile.
pub unsafe fn key(db: *mut c_void, passphrase: &[u8]) -> c_int {
    let Ok(n) = c_int::try_from(passphrase.len()) else {
        return 18; // SQLITE_TOOBIG
    };
    // SAFETY: the caller vouches for `db`; the pointer and length describe
    // a live slice that SQLite3MC only reads (and copies) during the call.
    unsafe { sqlite3_key_v2(db, c"main".as_ptr(), passphrase.as_ptr().cast(), n) }
}

/// Changes the passphrase of the `main` database (re-encrypts every page),
/// as `PRAGMA rekey='…'` does. Returns an SQLite result code.
///
/// # Safety
/// As for [`key`].
pub unsafe fn rekey(db: *mut c_void, passphrase: &[u8]) -> c_int {
    let Ok(n) = c_int::try_from(passphrase.len()) else {
        return 18; // SQLITE_TOOBIG
    };
    // SAFETY: as in `key`.
    unsafe { sqlite3_rekey_v2(db, c"main".as_ptr(), passphrase.as_ptr().cast(), n) }
}

/// The version string of the linked SQLite3MC. Calling it (or merely
/// naming it) keeps the static library in the link.
pub fn linked_version() -> String {
    // SAFETY: sqlite3mc_version returns a pointer to a static NUL-terminated
    // string owned by the library; it is never freed.
    let ptr = unsafe { sqlite3mc_version() };
    if ptr.is_null() {
        return String::new();
    }
    // SAFETY: non-null, NUL-terminated, static (see above).
    unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned()
}

/// The SQLite3MC release the amalgamation comes from.
pub const SQLITE3MC_VERSION: &str = "2.6.1";

#[cfg(test)]
mod tests {
    #[test]
    fn the_linked_library_is_sqlite3mc() {
        let v = super::linked_version();
        assert!(v.contains("Multiple Ciphers"), "{v}");
        assert!(v.contains(super::SQLITE3MC_VERSION), "{v}");
    }
}
