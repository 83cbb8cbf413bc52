//! The file name extensions that [`super::scan`] treats as executable:
//! a file that runs code, installs software, or hides other files from a
//! scanner when the recipient opens it with one click on a common desktop
//! (Windows, macOS, Linux). Sources: the lists Outlook blocks (Level 1
//! attachments) and Gmail refuses, trimmed of formats that only carry data
//! (certificates `.cer`/`.crt`/`.der`, Outlook data files `.pst`, `.tmp`).
//!
//! Each extension names its family; the family's line is the reason given
//! in a rejection. Plain archives (`.zip`, `.rar`, `.7z`, `.gz`) are not
//! here: a ZIP is opened and its entries are checked instead.

/// A Windows program, library or driver in PE format.
pub const WINDOWS_PROGRAM: &str = "Windows program, library or driver";
/// A script run by cmd, Windows Script Host, PowerShell or mshta.
pub const WINDOWS_SCRIPT: &str = "Windows script (cmd, Script Host, PowerShell, HTML application)";
/// An installer, package or deployment manifest that runs code when opened.
pub const INSTALLER: &str = "installer or package that runs code when opened";
/// A shortcut or link file that points at a program or a remote share.
pub const SHORTCUT: &str = "shortcut that starts a program or reaches a remote share";
/// A disk image: mounts with one click and hides its files from scanners.
pub const DISK_IMAGE: &str = "disk image that mounts on a click and hides its files";
/// Java or Android code.
pub const JAVA_ANDROID: &str = "Java or Android program";
/// An Office or Access file that carries macros, add-in code or live queries.
pub const OFFICE_ACTIVE: &str = "Office or Access file with macros, add-in code or queries";
/// Compiled help, consoles and panels that run scripts or snap-ins.
pub const WINDOWS_PANEL: &str = "Windows help, console or settings file that runs code";
/// A Unix shell or interpreter script.
pub const UNIX_SCRIPT: &str = "Unix shell or interpreter script";
/// A macOS application, AppleScript or Automator workflow.
pub const MACOS_PROGRAM: &str = "macOS application or script";
/// A Linux desktop launcher or self-contained application.
pub const LINUX_PROGRAM: &str = "Linux launcher or application bundle";

/// Extension (lower case, no dot) and family, sorted by extension so
/// [`family`] can search it. A test keeps it sorted and without repeats.
pub const EXTENSIONS: &[(&str, &str)] = &[
    ("aab", JAVA_ANDROID),
    ("accda", OFFICE_ACTIVE),
    ("accde", OFFICE_ACTIVE),
    ("accdr", OFFICE_ACTIVE),
    ("accdt", OFFICE_ACTIVE),
    ("action", MACOS_PROGRAM),
    ("ade", OFFICE_ACTIVE),
    ("adp", OFFICE_ACTIVE),
    ("apk", JAVA_ANDROID),
    ("apks", JAVA_ANDROID),
    ("app", MACOS_PROGRAM),
    ("appimage", LINUX_PROGRAM),
    ("appinstaller", INSTALLER),
    ("applescript", MACOS_PROGRAM),
    ("application", INSTALLER),
    ("appref-ms", SHORTCUT),
    ("appx", INSTALLER),
    ("appxbundle", INSTALLER),
    ("bas", OFFICE_ACTIVE),
    ("bash", UNIX_SCRIPT),
    ("bat", WINDOWS_SCRIPT),
    ("cab", INSTALLER),
    ("chm", WINDOWS_PANEL),
    ("class", JAVA_ANDROID),
    ("cmd", WINDOWS_SCRIPT),
    ("com", WINDOWS_PROGRAM),
    ("command", UNIX_SCRIPT),
    ("cpl", WINDOWS_PROGRAM),
    ("csh", UNIX_SCRIPT),
    ("deb", INSTALLER),
    ("desktop", LINUX_PROGRAM),
    ("dex", JAVA_ANDROID),
    ("diagcab", WINDOWS_PANEL),
    ("diagcfg", WINDOWS_PANEL),
    ("diagpack", WINDOWS_PANEL),
    ("dll", WINDOWS_PROGRAM),
    ("dmg", DISK_IMAGE),
    ("docm", OFFICE_ACTIVE),
    ("dotm", OFFICE_ACTIVE),
    ("drv", WINDOWS_PROGRAM),
    ("efi", WINDOWS_PROGRAM),
    ("exe", WINDOWS_PROGRAM),
    ("gadget", INSTALLER),
    ("hlp", WINDOWS_PANEL),
    ("hta", WINDOWS_SCRIPT),
    ("img", DISK_IMAGE),
    ("inf", WINDOWS_SCRIPT),
    ("ins", INSTALLER),
    ("iqy", OFFICE_ACTIVE),
    ("iso", DISK_IMAGE),
    ("isp", INSTALLER),
    ("jar", JAVA_ANDROID),
    ("jnlp", JAVA_ANDROID),
    ("js", WINDOWS_SCRIPT),
    ("jse", WINDOWS_SCRIPT),
    ("ksh", UNIX_SCRIPT),
    ("library-ms", SHORTCUT),
    ("lnk", SHORTCUT),
    ("mad", OFFICE_ACTIVE),
    ("maf", OFFICE_ACTIVE),
    ("mag", OFFICE_ACTIVE),
    ("mam", OFFICE_ACTIVE),
    ("maq", OFFICE_ACTIVE),
    ("mar", OFFICE_ACTIVE),
    ("mas", OFFICE_ACTIVE),
    ("mat", OFFICE_ACTIVE),
    ("mau", OFFICE_ACTIVE),
    ("mav", OFFICE_ACTIVE),
    ("maw", OFFICE_ACTIVE),
    ("mda", OFFICE_ACTIVE),
    ("mdb", OFFICE_ACTIVE),
    ("mde", OFFICE_ACTIVE),
    ("mdt", OFFICE_ACTIVE),
    ("mdw", OFFICE_ACTIVE),
    ("mdz", OFFICE_ACTIVE),
    ("mpkg", INSTALLER),
    ("msc", WINDOWS_PANEL),
    ("msh", WINDOWS_SCRIPT),
    ("msh1", WINDOWS_SCRIPT),
    ("msh1xml", WINDOWS_SCRIPT),
    ("msh2", WINDOWS_SCRIPT),
    ("msh2xml", WINDOWS_SCRIPT),
    ("mshxml", WINDOWS_SCRIPT),
    ("msi", INSTALLER),
    ("msix", INSTALLER),
    ("msixbundle", INSTALLER),
    ("msp", INSTALLER),
    ("mst", INSTALLER),
    ("msu", INSTALLER),
    ("ocx", WINDOWS_PROGRAM),
    ("one", OFFICE_ACTIVE),
    ("onepkg", OFFICE_ACTIVE),
    ("pif", WINDOWS_PROGRAM),
    ("pkg", INSTALLER),
    ("pl", UNIX_SCRIPT),
    ("potm", OFFICE_ACTIVE),
    ("ppam", OFFICE_ACTIVE),
    ("ppsm", OFFICE_ACTIVE),
    ("pptm", OFFICE_ACTIVE),
    ("ps1", WINDOWS_SCRIPT),
    ("ps1xml", WINDOWS_SCRIPT),
    ("ps2", WINDOWS_SCRIPT),
    ("ps2xml", WINDOWS_SCRIPT),
    ("psc1", WINDOWS_SCRIPT),
    ("psc2", WINDOWS_SCRIPT),
    ("psd1", WINDOWS_SCRIPT),
    ("psm1", WINDOWS_SCRIPT),
    ("py", UNIX_SCRIPT),
    ("pyc", UNIX_SCRIPT),
    ("pyo", UNIX_SCRIPT),
    ("pyw", UNIX_SCRIPT),
    ("pyz", UNIX_SCRIPT),
    ("pyzw", UNIX_SCRIPT),
    ("reg", WINDOWS_SCRIPT),
    ("rpm", INSTALLER),
    ("run", UNIX_SCRIPT),
    ("scf", SHORTCUT),
    ("scpt", MACOS_PROGRAM),
    ("scr", WINDOWS_PROGRAM),
    ("sct", WINDOWS_SCRIPT),
    ("search-ms", SHORTCUT),
    ("searchconnector-ms", SHORTCUT),
    ("settingcontent-ms", SHORTCUT),
    ("sh", UNIX_SCRIPT),
    ("shb", WINDOWS_SCRIPT),
    ("shs", WINDOWS_SCRIPT),
    ("sldm", OFFICE_ACTIVE),
    ("slk", OFFICE_ACTIVE),
    ("sys", WINDOWS_PROGRAM),
    ("theme", WINDOWS_PANEL),
    ("url", SHORTCUT),
    ("vb", WINDOWS_SCRIPT),
    ("vbe", WINDOWS_SCRIPT),
    ("vbp", WINDOWS_SCRIPT),
    ("vbs", WINDOWS_SCRIPT),
    ("vhd", DISK_IMAGE),
    ("vhdx", DISK_IMAGE),
    ("vsdm", OFFICE_ACTIVE),
    ("vssm", OFFICE_ACTIVE),
    ("vstm", OFFICE_ACTIVE),
    ("vxd", WINDOWS_PROGRAM),
    ("website", SHORTCUT),
    ("workflow", MACOS_PROGRAM),
    ("ws", WINDOWS_SCRIPT),
    ("wsb", WINDOWS_PANEL),
    ("wsc", WINDOWS_SCRIPT),
    ("wsf", WINDOWS_SCRIPT),
    ("wsh", WINDOWS_SCRIPT),
    ("xbap", INSTALLER),
    ("xla", OFFICE_ACTIVE),
    ("xlam", OFFICE_ACTIVE),
    ("xll", OFFICE_ACTIVE),
    ("xlsb", OFFICE_ACTIVE),
    ("xlsm", OFFICE_ACTIVE),
    ("xltm", OFFICE_ACTIVE),
    ("xnk", SHORTCUT),
    ("zsh", UNIX_SCRIPT),
];

/// The family of an executable extension (lower case, no dot), or `None`.
pub fn family(extension: &str) -> Option<&'static str> {
    EXTENSIONS
        .binary_search_by(|(e, _)| (*e).cmp(extension))
        .ok()
        .map(|i| EXTENSIONS[i].1)
}
