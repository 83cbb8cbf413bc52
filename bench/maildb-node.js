// The comparison for the merge benchmark of bench/maildb.sh: Forward
// Email's own stack (better-sqlite3-multiple-ciphers, the SQLite3MC build
// for Node) doing the inserts a postern-maildb merge does, with the same
// cipher, pragmas and schema, into the same kind of file: an empty mailbox
// made by postern (examples/maildb-bench.rs prepare), so the DDL is
// postern's own. In one transaction, per message: look up the folder, insert
// the row (envelope fields and the raw message), insert the words of
// From/To/Subject/body into messages_fts, advance the folder's next UID —
// the statements of ops.rs insert_message, each prepared once.
//
// The envelope is read with a few lines of header parsing (no MIME tree, no
// RFC 2047 decoding; the benchmark's messages are single text/plain parts
// of ASCII), cheaper than what postern does. No unsealing: the messages come
// from messages.bin, read before the clock starts.
//
//   node bench/maildb-node.js MAILBOX MESSAGES PASSPHRASE_FILE
//   -> "node N SECONDS"
'use strict';

const path = require('path');
const fs = require('fs');
const Database = require(
  path.join(__dirname, '..', 'tests', 'interop', 'node_modules', 'better-sqlite3-multiple-ciphers'),
);

const [file, messagesFile, pwFile] = process.argv.slice(2);
const passphrase = fs.readFileSync(pwFile, 'utf8').replace(/\r?\n$/, '');

const all = fs.readFileSync(messagesFile);
const messages = [];
for (let at = 0; at < all.length; ) {
  const len = all.readUInt32LE(at);
  messages.push(all.subarray(at + 4, at + 4 + len));
  at += 4 + len;
}

function envelope(raw) {
  let split = raw.indexOf('\n\n');
  let sep = 2;
  const crlf = raw.indexOf('\r\n\r\n');
  if (crlf >= 0 && (split < 0 || crlf < split)) {
    split = crlf;
    sep = 4;
  }
  if (split < 0) split = raw.length;
  const head = raw.toString('utf8', 0, split).replace(/\r?\n[ \t]+/g, ' ');
  const fields = {};
  for (const line of head.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (value) (fields[name] ||= []).push(value);
  }
  const first = (n) => (fields[n] ? fields[n][0] : '');
  const date = fields.date ? Date.parse(fields.date[0]) : NaN;
  return {
    from: (fields.from || []).join(', '),
    to: [...(fields.to || []), ...(fields.cc || [])].join(', '),
    subject: first('subject'),
    messageId: first('message-id'),
    date: Number.isNaN(date) ? null : Math.floor(date / 1000),
    body: raw.toString('utf8', Math.min(raw.length, split + sep)),
  };
}

const db = new Database(file, { fileMustExist: true });
const cipher = db.pragma("cipher='chacha20'", { simple: true });
if (cipher !== 'chacha20') throw new Error(`cipher answered ${cipher}`);
db.key(Buffer.from(passphrase));
db.prepare('SELECT count(*) FROM sqlite_master').get();
// The connection pragmas of postern's Mailbox::configure.
db.pragma('busy_timeout = 30000');
if (db.pragma('journal_mode = WAL', { simple: true }) !== 'wal') throw new Error('not WAL');
db.pragma('synchronous = NORMAL');
db.pragma('secure_delete = ON');
db.pragma('foreign_keys = ON');
db.pragma('temp_store = MEMORY');

const findFolder = db.prepare('SELECT id, name, uidnext FROM folders WHERE name = ?');
const insertMessage = db.prepare(
  `INSERT INTO messages (folder_id, uid, flags, internal_date, size, date,
                         from_addr, to_addr, subject, message_id, raw)
   VALUES (?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?)`,
);
const insertFts = db.prepare(
  `INSERT INTO messages_fts (rowid, from_addr, to_addr, subject, body)
   VALUES (?, ?, ?, ?, ?)`,
);
const nextUid = db.prepare('UPDATE folders SET uidnext = uidnext + 1 WHERE id = ?');

const now = Math.floor(Date.now() / 1000);
const insertAll = db.transaction((msgs) => {
  for (const raw of msgs) {
    const env = envelope(raw);
    const folder = findFolder.get('INBOX');
    const { lastInsertRowid } = insertMessage.run(
      folder.id,
      folder.uidnext,
      now,
      raw.length,
      env.date,
      env.from,
      env.to,
      env.subject,
      env.messageId,
      raw,
    );
    insertFts.run(lastInsertRowid, env.from, env.to, env.subject, env.body);
    nextUid.run(folder.id);
  }
});

const started = process.hrtime.bigint();
insertAll.immediate(messages);
const took = Number(process.hrtime.bigint() - started) / 1e9;
const count = db.prepare('SELECT count(*) AS n FROM messages').get().n;
db.close();
if (count !== messages.length) throw new Error(`stored ${count} of ${messages.length}`);
process.stdout.write(`node ${messages.length} ${took.toFixed(3)}\n`);
