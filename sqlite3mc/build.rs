//! Compiles the SQLite3 Multiple Ciphers amalgamation (from the
//! `sqlite3mc-src` crate, byte for byte as released) into a static archive
//! named `sqlite3`, so that libsqlite3-sys's `-lsqlite3` links it instead
//! of the system's plain SQLite.

fn main() {
    let dir = sqlite3mc_src::source_dir();
    let source = dir.join(sqlite3mc_src::SOURCE_FILE);
    println!("cargo:rerun-if-changed={}", source.display());
    println!("cargo:rerun-if-changed=build.rs");

    let mut build = cc::Build::new();
    build
        .file(&source)
        .include(dir)
        // The cipher is about four times slower at -O0: always optimise,
        // in debug and test builds too.
        .opt_level(2)
        .debug(false)
        .warnings(false)
        // Full-text search for `postern-maildb search`.
        .define("SQLITE_ENABLE_FTS5", None)
        // Serialized threading: rusqlite refuses a single-threaded build.
        .define("SQLITE_THREADSAFE", "1")
        // Deleted mail is overwritten, even if a connection forgets the pragma.
        .define("SQLITE_SECURE_DELETE", None)
        .define("SQLITE_DEFAULT_FOREIGN_KEYS", "1")
        .define("SQLITE_DEFAULT_WAL_SYNCHRONOUS", "1")
        .define("SQLITE_ENABLE_API_ARMOR", None)
        .define("SQLITE_DQS", "0")
        // Without it busy_timeout sleeps in whole seconds.
        .define("HAVE_USLEEP", "1")
        .define("HAVE_LOCALTIME_R", "1")
        .define("HAVE_GMTIME_R", "1")
        .define("HAVE_ISNAN", "1");
    // SQLITE_TEMP_STORE is left alone on purpose: SQLite3MC defaults it to
    // 2 (memory unless asked), because temporary files are not encrypted.
    build.compile("sqlite3");

    let target = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target != "windows" {
        println!("cargo:rustc-link-lib=pthread");
        println!("cargo:rustc-link-lib=m");
    }
}
