//! Executable content known by its first (or last) bytes, whatever the
//! part is called. Each check is as narrow as the format allows, so text
//! that happens to start with `MZ` or `#!` is not taken for a program.

use memchr::memmem;

/// A PE program or library: `MZ`, and the offset at 0x3C points at `PE\0\0`.
pub const PE: &str = "Windows program (PE, MZ header)";
/// An ELF program or library: `\x7fELF`, class and byte order valid.
pub const ELF: &str = "ELF program (Unix, Linux)";
/// A Mach-O program (32 or 64 bits, either byte order).
pub const MACH_O: &str = "Mach-O program (macOS)";
/// `CA FE BA BE` starts both a Mach-O universal binary and a Java class
/// file; both run code, so the one name covers both.
pub const FAT_OR_JAVA: &str = "Mach-O universal program or Java class file";
/// A script for an interpreter: `#!` then an absolute path.
pub const SHEBANG: &str = "script with an interpreter line (#!)";
/// A Windows shortcut: header size 0x4C and the ShellLink CLSID ([MS-SHLLINK] 2.1).
pub const LNK: &str = "Windows shortcut (LNK)";
/// An OLE compound file ([MS-CFB]) whose directory names a VBA project.
pub const OLE_VBA: &str = "Office document with VBA macros (OLE)";
/// An ISO 9660 or UDF volume descriptor at 0x8001, 0x8801 or 0x9001.
pub const ISO: &str = "disk image (ISO 9660 / UDF)";
/// A VHD footer (`conectix`) at the end or its copy at the start, or a VHDX (`vhdxfile`).
pub const VHD: &str = "virtual hard disk (VHD/VHDX)";
/// An Apple disk image: the `koly` trailer in the last 512 bytes.
pub const DMG: &str = "Apple disk image (DMG)";

const LNK_HEADER: [u8; 20] = [
    0x4C, 0x00, 0x00, 0x00, 0x01, 0x14, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0xC0, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x46,
];
const OLE_HEADER: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
/// "_VBA_PROJECT" in UTF-16LE, as a stream name in a compound file directory.
const VBA_PROJECT_UTF16: &[u8] = b"_\0V\0B\0A\0_\0P\0R\0O\0J\0E\0C\0T\0";
/// "VBA" and its NUL terminator in UTF-16LE: the storage holding the modules.
const VBA_STORAGE_UTF16: &[u8] = b"V\0B\0A\0\0\0";

/// What the content is, if it is one of the executable formats above.
/// `script_lines`: whether a `#!` line counts — false for the text of the
/// message itself, where a pasted script is something to read.
pub fn executable(data: &[u8], script_lines: bool) -> Option<&'static str> {
    if is_pe(data) {
        return Some(PE);
    }
    if let [0x7F, b'E', b'L', b'F', class, order, ..] = *data
        && (1..=2).contains(&class)
        && (1..=2).contains(&order)
    {
        return Some(ELF);
    }
    match data.get(..4) {
        Some([0xFE, 0xED, 0xFA, 0xCE | 0xCF]) | Some([0xCE | 0xCF, 0xFA, 0xED, 0xFE]) => {
            return Some(MACH_O);
        }
        Some([0xCA, 0xFE, 0xBA, 0xBE | 0xBF]) | Some([0xBE | 0xBF, 0xBA, 0xFE, 0xCA]) => {
            return Some(FAT_OR_JAVA);
        }
        _ => {}
    }
    if script_lines && is_shebang(data) {
        return Some(SHEBANG);
    }
    if data.starts_with(&LNK_HEADER) {
        return Some(LNK);
    }
    if data.starts_with(&OLE_HEADER) && has_vba_project(data) {
        return Some(OLE_VBA);
    }
    if is_iso(data) {
        return Some(ISO);
    }
    if is_vhd(data) {
        return Some(VHD);
    }
    if data.len() >= 512 && data[data.len() - 512..].starts_with(b"koly") {
        return Some(DMG);
    }
    None
}

/// `MZ`, then e_lfanew (u32 LE at 0x3C) points at `PE\0\0` inside `data`.
fn is_pe(data: &[u8]) -> bool {
    if !data.starts_with(b"MZ") {
        return false;
    }
    let Some(&[a, b, c, d]) = data.get(0x3C..0x40) else {
        return false;
    };
    let offset = u32::from_le_bytes([a, b, c, d]) as usize;
    offset
        .checked_add(4)
        .and_then(|end| data.get(offset..end))
        .is_some_and(|sig| sig == b"PE\0\0")
}

/// `#!` then optional blanks then `/`: an interpreter given by its path.
fn is_shebang(data: &[u8]) -> bool {
    let Some(rest) = data.strip_prefix(b"#!") else {
        return false;
    };
    rest.iter()
        .take(16)
        .find(|&&b| b != b' ' && b != b'\t')
        .is_some_and(|&b| b == b'/')
}

/// Heuristic, not a compound file parser: the directory of a document
/// with macros holds a `_VBA_PROJECT` stream, or a `VBA` storage whose
/// entry (128 bytes, sector aligned) starts with that name. A document
/// without macros has neither; text that merely says "VBA" is not UTF-16.
fn has_vba_project(data: &[u8]) -> bool {
    if memmem::find(data, VBA_PROJECT_UTF16).is_some() {
        return true;
    }
    memmem::find_iter(data, VBA_STORAGE_UTF16).any(|at| at % 128 == 0)
}

fn is_iso(data: &[u8]) -> bool {
    [0x8001usize, 0x8801, 0x9001].iter().any(|&at| {
        data.get(at..at + 5)
            .is_some_and(|id| matches!(id, b"CD001" | b"BEA01" | b"NSR02" | b"NSR03"))
    })
}

fn is_vhd(data: &[u8]) -> bool {
    const COOKIE: &[u8] = b"conectix";
    data.starts_with(COOKIE)
        || data.starts_with(b"vhdxfile")
        // The footer is 512 bytes (511 in disks made before Virtual PC 2004).
        || [512usize, 511].iter().any(|&n| {
            data.len() >= n && data[data.len() - n..].starts_with(COOKIE)
        })
}
