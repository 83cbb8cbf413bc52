//! One message per rule with its expected finding, look-alikes that must
//! pass, messages cut and mutated at random, and a timed 25 MB message.

use std::io::{Cursor, Write as _};

use zip::write::SimpleFileOptions;

use super::*;

const BOUNDARY: &str = "=-=postern-test=-=";

/// A part: its MIME headers (without a blank line) and its raw body.
struct Part {
    headers: String,
    body: Vec<u8>,
}

fn base64(data: &[u8]) -> Vec<u8> {
    let encoded = data_encoding::BASE64.encode(data);
    let mut out = Vec::with_capacity(encoded.len() + encoded.len() / 76 * 2 + 2);
    for line in encoded.as_bytes().chunks(76) {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// An attachment named `name` (in both headers), base64.
fn attach(name: &str, data: &[u8]) -> Part {
    attach_with(
        &format!(
            "Content-Type: application/octet-stream; name=\"{name}\"\r\n\
             Content-Disposition: attachment; filename=\"{name}\""
        ),
        data,
    )
}

fn attach_with(headers: &str, data: &[u8]) -> Part {
    Part {
        headers: format!("{headers}\r\nContent-Transfer-Encoding: base64"),
        body: base64(data),
    }
}

fn text(body: &str) -> Part {
    Part {
        headers: "Content-Type: text/plain; charset=utf-8".to_string(),
        body: body.as_bytes().to_vec(),
    }
}

/// multipart/mixed: a short text, then `parts`.
fn message(parts: Vec<Part>) -> Vec<u8> {
    let mut out = format!(
        "From: a@example.org\r\nTo: b@example.net\r\nSubject: test\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"{BOUNDARY}\"\r\n\r\n\
         preamble\r\n"
    )
    .into_bytes();
    for part in std::iter::once(text("Hello, the files.\r\n")).chain(parts) {
        write!(out, "--{BOUNDARY}\r\n{}\r\n\r\n", part.headers).unwrap();
        out.extend_from_slice(&part.body);
        out.extend_from_slice(b"\r\n");
    }
    write!(out, "--{BOUNDARY}--\r\n").unwrap();
    out
}

/// [`message`] with another boundary, to be attached to one.
fn inner_message(parts: Vec<Part>) -> Vec<u8> {
    let m = String::from_utf8(message(parts)).unwrap();
    m.replace(BOUNDARY, "=-=inner=-=").into_bytes()
}

fn reasons(message: &[u8]) -> Vec<Reason> {
    let scan = scan(message, &Limits::default());
    assert!(!scan.malformed, "malformed: {scan:?}");
    scan.findings.into_iter().map(|f| f.reason).collect()
}

fn in_archive(entry: &str, reason: Reason) -> Reason {
    Reason::InArchive {
        entry: entry.to_string(),
        reason: Box::new(reason),
    }
}

fn pe() -> Vec<u8> {
    let mut data = vec![0u8; 0x200];
    data[..2].copy_from_slice(b"MZ");
    data[0x3C..0x40].copy_from_slice(&0x80u32.to_le_bytes());
    data[0x80..0x84].copy_from_slice(b"PE\0\0");
    data
}

fn elf() -> Vec<u8> {
    let mut data = vec![0u8; 64];
    data[..7].copy_from_slice(b"\x7fELF\x02\x01\x01");
    data
}

fn lnk() -> Vec<u8> {
    let mut data = vec![0u8; 0x4C];
    data[..20].copy_from_slice(&[
        0x4C, 0, 0, 0, 0x01, 0x14, 0x02, 0, 0, 0, 0, 0, 0xC0, 0, 0, 0, 0, 0, 0, 0x46,
    ]);
    data
}

/// An OLE header, then a directory sector whose second entry is `name`
/// (UTF-16LE, 128-byte entries), as in a document's directory.
fn ole(names: &[&str]) -> Vec<u8> {
    let mut data = vec![0u8; 512 * 3];
    data[..8].copy_from_slice(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]);
    for (i, name) in names.iter().enumerate() {
        let at = 512 + 128 * i;
        for (j, unit) in name.encode_utf16().enumerate() {
            data[at + 2 * j..at + 2 * j + 2].copy_from_slice(&unit.to_le_bytes());
        }
    }
    data
}

fn iso() -> Vec<u8> {
    let mut data = vec![0u8; 0x8800];
    data[0x8000] = 1;
    data[0x8001..0x8006].copy_from_slice(b"CD001");
    data
}

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in entries {
        writer.start_file(*name, options).unwrap();
        writer.write_all(data).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

/// `zip` with the "encrypted" flag (bit 0) set in every local and
/// central header: the zip crate's writer has no ZipCrypto without AES.
fn encrypt_flags(mut zip: Vec<u8>) -> Vec<u8> {
    for (signature, flags_at) in [(&b"PK\x03\x04"[..], 6), (&b"PK\x01\x02"[..], 8)] {
        let starts: Vec<usize> = memchr::memmem::find_iter(&zip, signature).collect();
        for at in starts {
            zip[at + flags_at] |= 1;
        }
    }
    zip
}

// ---- rule 1: extensions ----

#[test]
fn extension_table_is_sorted_unique_and_large() {
    assert!(EXTENSIONS.len() >= 120, "{}", EXTENSIONS.len());
    for pair in EXTENSIONS.windows(2) {
        assert!(pair[0].0 < pair[1].0, "{} before {}", pair[0].0, pair[1].0);
    }
    for (ext, _) in EXTENSIONS {
        assert_eq!(*ext, ext.to_ascii_lowercase());
        assert!(!ext.starts_with('.'));
    }
    for ext in [
        "exe", "com", "scr", "pif", "cpl", "msi", "msp", "bat", "cmd", "vbs", "vbe",
    ] {
        assert!(family(ext).is_some(), "{ext}");
    }
    for ext in [
        "js", "jse", "wsf", "wsh", "ps1", "psm1", "hta", "lnk", "url", "scf", "iso",
    ] {
        assert!(family(ext).is_some(), "{ext}");
    }
    for ext in [
        "img", "vhd", "vhdx", "jar", "apk", "docm", "xlsm", "pptm", "dotm", "xlam",
    ] {
        assert!(family(ext).is_some(), "{ext}");
    }
    for ext in [
        "pdf", "txt", "zip", "docx", "xlsx", "jpg", "png", "gz", "html", "csv",
    ] {
        assert!(family(ext).is_none(), "{ext}");
    }
}

#[test]
fn executable_extensions_are_flagged() {
    for (name, ext) in [
        ("setup.exe", "exe"),
        ("LOADER.JS", "js"),
        ("Invoice.lnk", "lnk"),
        ("disk.iso", "iso"),
        ("budget.xlsm", "xlsm"),
        ("run.ps1", "ps1"),
        ("app.apk", "apk"),
        ("dir/sub\\tool.scr", "scr"),
        ("trailing.exe. . ", "exe"),
        ("setup.v2.exe", "exe"),
    ] {
        let m = message(vec![attach(name, b"harmless bytes")]);
        assert_eq!(reasons(&m), vec![Reason::Extension(ext.into())], "{name}");
    }
}

#[test]
fn rfc2231_and_rfc2047_names_are_decoded() {
    let m = message(vec![attach_with(
        "Content-Type: application/octet-stream\r\n\
         Content-Disposition: attachment;\r\n filename*0*=utf-8''r%C3%A9sum%C3%A9;\r\n filename*1*=%2Eexe",
        b"x",
    )]);
    let scan = scan(&m, &Limits::default());
    assert_eq!(scan.findings.len(), 1, "{scan:?}");
    assert_eq!(scan.findings[0].name.as_deref(), Some("résumé.exe"));
    assert_eq!(scan.findings[0].reason, Reason::Extension("exe".into()));

    let m = message(vec![attach_with(
        "Content-Type: application/octet-stream; name=\"=?utf-8?B?ZXZpbC5leGU=?=\"",
        b"x",
    )]);
    assert_eq!(reasons(&m), vec![Reason::Extension("exe".into())]);
}

#[test]
fn a_name_in_either_header_counts() {
    let m = message(vec![attach_with(
        "Content-Type: application/pdf; name=\"payload.vbs\"\r\n\
         Content-Disposition: attachment; filename=\"payload.pdf\"",
        b"%PDF-1.4",
    )]);
    let scan = scan(&m, &Limits::default());
    assert_eq!(scan.findings.len(), 1);
    assert_eq!(scan.findings[0].reason, Reason::Extension("vbs".into()));
    assert_eq!(scan.findings[0].name.as_deref(), Some("payload.pdf"));
    assert_eq!(scan.findings[0].part, 2);
}

// ---- rule 2: double extensions ----

#[test]
fn double_extensions_are_flagged() {
    for name in [
        "invoice.pdf.exe",
        "invoice.pdf     .exe",
        "Scan.JPG.scr",
        "a.docx.js",
    ] {
        let m = message(vec![attach(name, b"x")]);
        let expected = name.rsplit('.').next().unwrap().to_ascii_lowercase();
        assert_eq!(
            reasons(&m),
            vec![Reason::DoubleExtension(expected)],
            "{name}"
        );
    }
}

// ---- rule 3: bidi controls ----

#[test]
fn bidi_controls_in_names_are_flagged() {
    // Displays as "invoiceexe.pdf".
    let m = message(vec![attach("invoice\u{202E}fdp.exe", b"x")]);
    assert_eq!(
        reasons(&m),
        vec![Reason::BidiControl, Reason::Extension("exe".into())]
    );
    for control in [
        '\u{202D}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}', '\u{200E}', '\u{200F}',
    ] {
        let m = message(vec![attach(&format!("report{control}.pdf"), b"%PDF-1.7")]);
        assert_eq!(reasons(&m), vec![Reason::BidiControl], "{control:?}");
    }
}

// ---- rule 4: magic ----

#[test]
fn executable_content_is_flagged_whatever_its_name() {
    let mut macho = vec![0u8; 32];
    macho[..4].copy_from_slice(&[0xCF, 0xFA, 0xED, 0xFE]);
    let mut macho_be = vec![0u8; 32];
    macho_be[..4].copy_from_slice(&[0xFE, 0xED, 0xFA, 0xCE]);
    let mut fat = vec![0u8; 32];
    fat[..4].copy_from_slice(&[0xCA, 0xFE, 0xBA, 0xBE]);
    let mut vhd_end = vec![0u8; 4096];
    vhd_end[4096 - 512..4096 - 504].copy_from_slice(b"conectix");
    let mut vhd_start = vec![0u8; 4096];
    vhd_start[..8].copy_from_slice(b"conectix");
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (pe(), magic::PE),
        (elf(), magic::ELF),
        (macho, magic::MACH_O),
        (macho_be, magic::MACH_O),
        (fat, magic::FAT_OR_JAVA),
        (b"#!/bin/sh\nrm -rf ~\n".to_vec(), magic::SHEBANG),
        (b"#! /usr/bin/env python3\n".to_vec(), magic::SHEBANG),
        (lnk(), magic::LNK),
        (ole(&["Root Entry", "_VBA_PROJECT"]), magic::OLE_VBA),
        (ole(&["Root Entry", "Macros", "VBA"]), magic::OLE_VBA),
        (iso(), magic::ISO),
        (vhd_end, magic::VHD),
        (vhd_start, magic::VHD),
    ];
    for (data, kind) in cases {
        let m = message(vec![attach("photo.jpg", &data)]);
        assert_eq!(reasons(&m), vec![Reason::Magic(kind)], "{kind}");
    }
}

#[test]
fn content_in_any_transfer_encoding_is_decoded() {
    // Base64 broken by stray characters still decodes, as clients do.
    let mut body = base64(&pe());
    body.splice(10..10, b"!!".iter().copied());
    let m = message(vec![Part {
        headers: "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64"
            .into(),
        body,
    }]);
    assert_eq!(reasons(&m), vec![Reason::Magic(magic::PE)]);

    let qp = b"#!/bin/sh=0Aecho hi=0A".to_vec();
    let m = message(vec![Part {
        headers: "Content-Type: application/x-sh\r\nContent-Transfer-Encoding: quoted-printable"
            .into(),
        body: qp,
    }]);
    assert_eq!(reasons(&m), vec![Reason::Magic(magic::SHEBANG)]);
}

// ---- rule 5: archives ----

#[test]
fn zip_entries_are_checked_by_name_and_magic() {
    let zip = zip_of(&[
        ("docs/readme.txt", b"hello"),
        ("docs/invoice.pdf.exe", b"x"),
        ("data.bin", &pe()),
        ("inner.zip", &zip_of(&[("deeper.exe", &pe())])),
    ]);
    let m = message(vec![attach("files.zip", &zip)]);
    assert_eq!(
        reasons(&m),
        vec![
            in_archive(
                "docs/invoice.pdf.exe",
                Reason::DoubleExtension("exe".into())
            ),
            in_archive("data.bin", Reason::Magic(magic::PE)),
        ]
    );
}

#[test]
fn a_zip_is_opened_whatever_its_name() {
    let zip = zip_of(&[("run.js", b"WScript.Echo(1)")]);
    let m = message(vec![attach("photo.jpg", &zip)]);
    assert_eq!(
        reasons(&m),
        vec![in_archive("run.js", Reason::Extension("js".into()))]
    );
}

#[test]
fn encrypted_zip_entries_are_their_own_finding() {
    let zip = encrypt_flags(zip_of(&[("secret.pdf", b"%PDF-1.4 ...")]));
    let m = message(vec![attach("secret.zip", &zip)]);
    assert_eq!(reasons(&m), vec![Reason::EncryptedArchive]);

    // Names are not encrypted in a ZIP: still checked.
    let zip = encrypt_flags(zip_of(&[("secret.exe", b"MZ")]));
    let m = message(vec![attach("secret.zip", &zip)]);
    assert_eq!(
        reasons(&m),
        vec![
            in_archive("secret.exe", Reason::Extension("exe".into())),
            Reason::EncryptedArchive
        ]
    );
}

#[test]
fn zip_bombs_are_reported_not_expanded() {
    let zeros = vec![0u8; 4 << 20];
    let zip = zip_of(&[("zeros.txt", &zeros)]);
    assert!(zip.len() < 64 << 10, "{}", zip.len());
    let m = message(vec![attach("big.zip", &zip)]);
    let found = reasons(&m);
    assert!(
        matches!(found.as_slice(), [Reason::ZipBomb(why)] if why.contains("zeros.txt")),
        "{found:?}"
    );

    let limits = Limits {
        zip_max_entries: 5,
        ..Limits::default()
    };
    let names: Vec<String> = (0..6).map(|i| format!("f{i}.txt")).collect();
    let entries: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x"[..])).collect();
    let m = message(vec![attach("many.zip", &zip_of(&entries))]);
    let found = scan(&m, &limits).findings;
    assert!(
        matches!(found[0].reason, Reason::ZipBomb(ref why) if why.contains("entries")),
        "{found:?}"
    );

    let limits = Limits {
        zip_max_total: 1000,
        ..Limits::default()
    };
    let m = message(vec![attach(
        "two.zip",
        &zip_of(&[("a", &[7; 600]), ("b", &[9; 600])]),
    )]);
    assert!(matches!(
        scan(&m, &limits).findings[0].reason,
        Reason::ZipBomb(_)
    ));
}

// ---- rule 6: embedded messages ----

#[test]
fn attached_messages_are_walked() {
    let m = message(vec![Part {
        headers: "Content-Type: message/rfc822".into(),
        body: inner_message(vec![attach("deep.exe", b"x")]),
    }]);
    let scan = scan(&m, &Limits::default());
    assert!(!scan.malformed);
    // 0 outer multipart, 1 text, 2 message/rfc822, 3 inner multipart, 4 text, 5 deep.exe
    assert_eq!(scan.parts, 6);
    assert_eq!(
        scan.findings,
        vec![Finding {
            part: 5,
            name: Some("deep.exe".into()),
            reason: Reason::Extension("exe".into())
        }]
    );

    let limits = Limits {
        max_depth: 0,
        ..Limits::default()
    };
    let m = message(vec![Part {
        headers: "Content-Type: message/rfc822".into(),
        body: inner_message(vec![attach("deep.exe", b"x")]),
    }]);
    let scan = super::scan(&m, &limits);
    assert!(scan.malformed && scan.findings.is_empty(), "{scan:?}");
}

// ---- look-alikes ----

#[test]
fn look_alikes_are_not_flagged() {
    let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0];
    jpeg.extend_from_slice(&[0x20; 400]);
    let mut conectix_inside = vec![b'a'; 4096];
    conectix_inside[1000..1008].copy_from_slice(b"conectix");
    let cases: Vec<(&str, Part)> = vec![
        (
            "exe named in text",
            text("Please run setup.exe or invoice.pdf.exe, then C:\\x.js\r\n"),
        ),
        (
            "a PDF",
            attach("report.pdf", b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n"),
        ),
        (
            "final .txt",
            attach("setup.exe.txt", b"notes about the installer"),
        ),
        (
            "text starting MZ",
            attach("mz.txt", b"MZ is the mark of Mark Zbikowski\n"),
        ),
        ("pasted script in the text", text("#!/bin/sh\necho hello\n")),
        (
            "tar.gz",
            attach("archive.tar.gz", &[0x1F, 0x8B, 8, 0, 0, 0, 0, 0]),
        ),
        ("JPEG", attach("photo.jpg", &jpeg)),
        (
            "docx",
            attach(
                "letter.docx",
                &zip_of(&[
                    ("[Content_Types].xml", b"<Types/>"),
                    ("word/document.xml", b"<w:document/>"),
                ]),
            ),
        ),
        (
            "OLE without VBA",
            attach("old.doc", &ole(&["Root Entry", "WordDocument", "1Table"])),
        ),
        ("no extension", attach("exe", b"x")),
        ("exe in the middle", attach("my.exe.notes.txt", b"x")),
        (
            "CD001 at the start",
            attach("cd.txt", b"CD001 is a catalogue number"),
        ),
        (
            "small compressible entry",
            attach("logs.zip", &zip_of(&[("log.txt", &[b'a'; 100_000])])),
        ),
        ("conectix inside", attach("vm.txt", &conectix_inside)),
        ("Hebrew name", attach("מסמך.pdf", b"%PDF-1.4")),
        (
            "shebang without a path",
            attach("notes.md", b"#!important\n"),
        ),
        ("trailing dot on text", attach("readme.txt.", b"x")),
    ];
    for (what, part) in cases {
        let m = message(vec![part]);
        assert_eq!(reasons(&m), vec![], "{what}");
    }
}

// ---- describe ----

#[test]
fn describe_is_one_clean_bounded_line() {
    let long = format!("{}\u{202E}fdp.\r\nexe", "x".repeat(200));
    let finding = Finding {
        part: 3,
        name: Some(long),
        reason: Reason::BidiControl,
    };
    let line = finding.describe();
    assert!(line.is_ascii() && !line.contains(['\r', '\n']), "{line}");
    assert!(line.len() < 160, "{}", line.len());
    assert!(line.starts_with("attachment \"xxx"), "{line}");

    let finding = Finding {
        part: 2,
        name: Some("files.zip".into()),
        reason: in_archive("a.pdf.exe", Reason::DoubleExtension("exe".into())),
    };
    assert_eq!(
        finding.describe(),
        "attachment \"files.zip\": archive entry \"a.pdf.exe\": double extension hides \
         a .exe (Windows program, library or driver)"
    );
    let finding = Finding {
        part: 4,
        name: None,
        reason: Reason::Magic(magic::ELF),
    };
    assert_eq!(
        finding.describe(),
        "part 4: content is executable: ELF program (Unix, Linux)"
    );
}

// ---- malformed input ----

#[test]
fn nesting_past_the_parser_limit_is_malformed_not_a_panic() {
    let mut m = String::new();
    for depth in 0..300 {
        m.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"b{depth}\"\r\n\r\n--b{depth}\r\n"
        ));
    }
    m.push_str("Content-Type: application/octet-stream; name=\"x.exe\"\r\n\r\nMZ\r\n");
    let scan = scan(m.as_bytes(), &Limits::default());
    assert!(scan.malformed, "{scan:?}");
}

#[test]
fn broken_structures_do_not_panic() {
    for m in [
        &b""[..],
        b"\r\n\r\n",
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x",
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n",
        b"Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n--\r\n",
        b"Content-Transfer-Encoding: base64\r\n\r\n====",
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n=Z=\r",
        b"Content-Type: application/zip\r\n\r\nPK\x03\x04\x14\x00",
        b"Content-Type: message/rfc822\r\n\r\nContent-Type: message/rfc822\r\n\r\n",
    ] {
        let _ = scan(m, &Limits::default());
    }
}

/// Mutations of a message with a ZIP, an OLE file and a PE in it: bytes
/// flipped, cut, repeated. A fixed seed, so a failure can be replayed.
#[test]
fn seeded_mutations_never_panic() {
    let zip = zip_of(&[("a.exe", &pe()), ("b.txt", b"hello")]);
    let base = message(vec![
        attach("a.zip", &zip),
        attach("b.doc", &ole(&["Root Entry", "VBA"])),
        Part {
            headers: "Content-Type: application/octet-stream".into(),
            body: zip.clone(),
        },
    ]);
    let mut state: u64 = 0x5EED_0FA7_7AC4;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..3000 {
        let mut m = base.clone();
        for _ in 0..1 + next() % 8 {
            let at = (next() as usize) % m.len().max(1);
            match next() % 4 {
                0 => m[at] = next() as u8,
                1 => m.truncate(at),
                2 => m.insert(at, next() as u8),
                _ => {
                    let end = (at + (next() as usize) % 64).min(m.len());
                    let chunk = m[at..end].to_vec();
                    m.splice(at..at, chunk);
                }
            }
            if m.is_empty() {
                break;
            }
        }
        let _ = scan(&m, &Limits::default());
    }
}

mod props {
    use proptest::prelude::*;

    use super::super::{Limits, archive, magic, scan};

    proptest! {
        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let _ = scan(&data, &Limits::default());
            let _ = magic::executable(&data, true);
            let _ = archive::scan(&data, &Limits::default());
        }

        #[test]
        fn random_zip_tails_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let mut data = b"PK\x03\x04".to_vec();
            data.extend_from_slice(&tail);
            let _ = archive::scan(&data, &Limits::default());
        }
    }
}

// ---- performance ----

/// Peak resident memory since the last reset, in bytes (Linux).
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn current_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[test]
#[ignore = "timing: run in release with --ignored --nocapture"]
fn scan_25_mb_with_500_parts() {
    let mut next: u64 = 0x1234_5678;
    let mut noise = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                next ^= next << 13;
                next ^= next >> 7;
                next ^= next << 17;
                next as u8
            })
            .collect()
    };
    // 499 attachments of ~37 KB each (~50 KB in base64): PDFs-to-be,
    // random data, ZIPs of random data, a few executables.
    let mut parts = Vec::new();
    for i in 0..499 {
        let data = noise(37_000);
        parts.push(match i % 5 {
            0 => attach(
                &format!("f{i}.zip"),
                &zip_of(&[("a.bin", &data), ("b.pdf", b"%PDF")]),
            ),
            1 => attach(&format!("f{i}.exe"), &data),
            2 => attach(
                &format!("f{i}.pdf"),
                &[b"%PDF-1.4\n".as_slice(), &data].concat(),
            ),
            _ => attach(&format!("f{i}.dat"), &data),
        });
    }
    let m = message(parts);
    let scan = measure("500 parts", &m);
    assert_eq!(scan.parts, 501);
    assert!(m.len() > 25_000_000, "{}", m.len());

    // One 18 MB attachment: the largest single decode.
    let m = message(vec![attach("big.dat", &noise(18_500_000))]);
    assert!(m.len() > 25_000_000, "{}", m.len());
    measure("one part", &m);
}

/// Times five scans of `m` and reads the peak resident memory over them.
fn measure(what: &str, m: &[u8]) -> Scan {
    let mb = |n: u64| n as f64 / (1 << 20) as f64;
    // Freed pages back to the system, then the peak reset (Linux >= 4.0),
    // so the peak counts what the scans hold, not the building's garbage.
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases free memory of glibc's allocator.
    unsafe {
        nix::libc::malloc_trim(0);
    }
    std::fs::write("/proc/self/clear_refs", "5").ok();
    let before = current_rss().unwrap_or(0);
    let mut times = Vec::new();
    let mut result = None;
    for _ in 0..5 {
        let start = std::time::Instant::now();
        let scan = scan(m, &Limits::default());
        times.push(start.elapsed());
        result = Some(scan);
    }
    let peak = peak_rss().unwrap_or(0);
    let scan = result.unwrap();
    times.sort();
    eprintln!(
        "{what}: message {:.1} MiB ({} bytes), {} parts, {} findings; scan min {:?} median {:?} \
         max {:?}; RSS before {:.1} MiB, peak {:.1} MiB (+{:.1} MiB, {:.2}x the message)",
        mb(m.len() as u64),
        m.len(),
        scan.parts,
        scan.findings.len(),
        times[0],
        times[2],
        times[4],
        mb(before),
        mb(peak),
        mb(peak.saturating_sub(before)),
        peak.saturating_sub(before) as f64 / m.len() as f64,
    );
    scan
}

#[test]
fn replies_take_a_or_an_as_the_family_needs() {
    let said = |ext: &str| Reason::Extension(ext.to_owned()).describe();
    assert_eq!(said("exe"), ".exe is a Windows program, library or driver");
    assert!(
        said("msi").starts_with(".msi is an installer"),
        "{}",
        said("msi")
    );
    assert!(
        said("docm").starts_with(".docm is an Office"),
        "{}",
        said("docm")
    );
}
