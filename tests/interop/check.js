// Interop with Forward Email's stack: better-sqlite3-multiple-ciphers opens
// a postern-maildb mailbox with PRAGMA cipher='chacha20' and the passphrase,
// and writes into it; or creates an encrypted database for postern-maildb
// to open. Run by tests/maildb.rs (see tests/interop/install.sh).
//
//   node check.js read FILE PASSPHRASE_FILE   -> JSON on stdout
//   node check.js create FILE PASSPHRASE_FILE -> a new encrypted database
'use strict';

const fs = require('fs');
const Database = require('better-sqlite3-multiple-ciphers');

const [mode, file, pwFile] = process.argv.slice(2);
const passphrase = fs.readFileSync(pwFile, 'utf8').replace(/\r?\n$/, '');

function open(path) {
  const db = new Database(path, { fileMustExist: mode === 'read' });
  const cipher = db.pragma("cipher='chacha20'", { simple: true });
  if (cipher !== 'chacha20') throw new Error(`cipher answered ${cipher}`);
  db.key(Buffer.from(passphrase));
  db.prepare('SELECT count(*) FROM sqlite_master').get();
  return db;
}

if (mode === 'read') {
  const db = open(file);
  const out = {
    version: db.pragma('user_version', { simple: true }),
    journal_mode: db.pragma('journal_mode', { simple: true }),
    folders: db.prepare('SELECT name FROM folders ORDER BY id').all().map((r) => r.name),
    subjects: db
      .prepare('SELECT subject FROM messages ORDER BY id')
      .all()
      .map((r) => r.subject),
    fts: db
      .prepare("SELECT rowid FROM messages_fts WHERE messages_fts MATCH 'invoice'")
      .all()
      .map((r) => r.rowid),
    raw_starts: db.prepare('SELECT raw FROM messages ORDER BY id LIMIT 1').get().raw.subarray(0, 5).toString(),
    integrity: db.pragma('integrity_check', { simple: true }),
  };
  // And write: a folder postern-maildb must then list.
  db.prepare(
    "INSERT OR IGNORE INTO folders (name, uidvalidity, created) VALUES ('From Node', 1, 0)",
  ).run();
  db.close();
  process.stdout.write(JSON.stringify(out));
} else if (mode === 'create') {
  const db = open(file);
  db.pragma('journal_mode = WAL');
  db.exec("CREATE TABLE notes (x TEXT); INSERT INTO notes VALUES ('written by node');");
  db.close();
} else {
  throw new Error(`unknown mode ${mode}`);
}
