// The Node side of bench/maildb.sh: Forward Email's own stack
// (better-sqlite3-multiple-ciphers, the SQLite3MC build for Node) doing what
// postern-maildb does, on a mailbox made by postern, with the same cipher
// and connection pragmas.
//
// merge: the inserts a postern-maildb merge does, into the same kind of
// file: an empty mailbox made by postern (examples/maildb-bench.rs
// prepare), so the DDL is postern's own. In one transaction, per message:
// look up the folder, insert the row (envelope fields and the raw message),
// insert the words of From/To/Subject/body into messages_fts, advance the
// folder's next UID — the statements of ops.rs insert_message, each
// prepared once.
//
// The envelope is read with a few lines of header parsing (no MIME tree, no
// RFC 2047 decoding; the benchmark's messages are single text/plain parts
// of ASCII), cheaper than what postern does. No unsealing: the messages come
// from messages.bin, read before the clock starts.
//
//   node bench/maildb-node.js MAILBOX MESSAGES PASSPHRASE_FILE
//   -> "node N SECONDS"
//
// export: what `postern-maildb export --format mbox DEST` does, the way a
// Node program would write it: the messages by folder and UID from one
// .iterate() over `SELECT raw` (one statement, so one read snapshot), each
// written as mboxrd — a From_ line with the internal date in ctime(3) form
// (UTC), CRLF made LF, one more '>' before every line matching /^>*From /,
// an empty line after — through a 256 KiB buffer of writeSync calls into
// DEST (created, mode 0600, never over an existing file), fsynced at the
// end. The same bytes as postern's export.
//
//   node bench/maildb-node.js export MAILBOX PASSPHRASE_FILE DEST
//   -> "node-export MESSAGES BYTES SECONDS" (BYTES: the messages as stored)
'use strict';

const path = require('path');
const fs = require('fs');
const Database = require(
  path.join(__dirname, '..', 'tests', 'interop', 'node_modules', 'better-sqlite3-multiple-ciphers'),
);

function readPassphrase(pwFile) {
  return fs.readFileSync(pwFile, 'utf8').replace(/\r?\n$/, '');
}

// Opens a mailbox made by postern, as postern's guard and
// Mailbox::configure do.
function open(file, passphrase) {
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
  return db;
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

function merge(file, messagesFile, pwFile) {
  const all = fs.readFileSync(messagesFile);
  const messages = [];
  for (let at = 0; at < all.length; ) {
    const len = all.readUInt32LE(at);
    messages.push(all.subarray(at + 4, at + 4 + len));
    at += 4 + len;
  }
  const db = open(file, readPassphrase(pwFile));

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
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

// `From MAILER-DAEMON Thu Nov 23 17:30:28 2026` (UTC), as postern writes it.
function fromLine(unixSeconds) {
  const d = new Date(Math.max(0, unixSeconds) * 1000);
  const two = (n) => String(n).padStart(2, '0');
  return (
    `From MAILER-DAEMON ${DAYS[d.getUTCDay()]} ${MONTHS[d.getUTCMonth()]} ` +
    `${String(d.getUTCDate()).padStart(2, ' ')} ` +
    `${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} ` +
    `${d.getUTCFullYear()}`
  );
}

function exportMbox(file, pwFile, dest) {
  const started = process.hrtime.bigint();
  const db = open(file, readPassphrase(pwFile));
  const fd = fs.openSync(dest, 'wx', 0o600);
  const pending = [];
  let pendingBytes = 0;
  const flush = () => {
    const buf = Buffer.concat(pending, pendingBytes);
    for (let at = 0; at < buf.length; ) at += fs.writeSync(fd, buf, at);
    pending.length = 0;
    pendingBytes = 0;
  };
  let messages = 0;
  let bytes = 0;
  const rows = db.prepare('SELECT internal_date, raw FROM messages ORDER BY folder_id, uid');
  for (const { internal_date: date, raw } of rows.iterate()) {
    // latin1 maps each byte to one character and back: any bytes survive.
    let text = raw.toString('latin1');
    if (text.includes('\r\n')) text = text.replace(/\r\n/g, '\n');
    text = text.replace(/^(>*From )/gm, '>$1');
    if (!text.endsWith('\n')) text += '\n';
    const out = Buffer.from(`${fromLine(date)}\n${text}\n`, 'latin1');
    pending.push(out);
    pendingBytes += out.length;
    if (pendingBytes >= 256 * 1024) flush();
    messages += 1;
    bytes += raw.length;
  }
  flush();
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  db.close();
  const took = Number(process.hrtime.bigint() - started) / 1e9;
  process.stdout.write(`node-export ${messages} ${bytes} ${took.toFixed(3)}\n`);
}

const args = process.argv.slice(2);
if (args[0] === 'export' && args.length === 4) {
  exportMbox(args[1], args[2], args[3]);
} else if (args.length === 3) {
  merge(args[0], args[1], args[2]);
} else {
  process.stderr.write(
    'usage: node bench/maildb-node.js MAILBOX MESSAGES PASSPHRASE_FILE\n' +
      '       node bench/maildb-node.js export MAILBOX PASSPHRASE_FILE DEST\n',
  );
  process.exit(2);
}
