//! Directory listing formatting: LIST (`ls -l`), NLST and MLSD/MLST facts.

use alloc::format;
use alloc::vec::Vec;

use super::{DirEntry, DirEntryKind, ListFormat, ServerSession};
use crate::codec::listing::{Fact, ListEntry, ListEntryKind, ListTime, MlsxEntry};

impl ServerSession {
    /// The listing lines of `entries` (tests and small listings; transfers format one entry at
    /// a time with [`format_entry`]).
    #[cfg(test)]
    pub(super) fn format_listing(&self, format: ListFormat, entries: &[DirEntry]) -> Vec<u8> {
        let mut out = Vec::new();
        for entry in entries {
            format_entry(&self.mlst_selected, format, entry, &mut out);
        }
        out
    }

    pub(super) fn mlsx_entry(&self, entry: &DirEntry) -> MlsxEntry {
        mlsx_entry(&self.mlst_selected, entry)
    }
}

/// Appends the listing line of `entry` (with CRLF) to `out`, in `format`, with the selected
/// MLST facts. A name that cannot be sent (CR, LF, empty) is left out (RFC 3659 §7.2).
pub(super) fn format_entry(
    selected: &[Vec<u8>],
    format: ListFormat,
    entry: &DirEntry,
    out: &mut Vec<u8>,
) {
    let start = out.len();
    let ok = match format {
        ListFormat::Nlst => {
            if entry.name.iter().any(|&b| b == b'\r' || b == b'\n') || entry.name.is_empty() {
                false
            } else {
                out.extend_from_slice(&entry.name);
                true
            }
        }
        ListFormat::Mlsd => mlsx_entry(selected, entry).encode(out).is_ok(),
        ListFormat::List => list_entry(entry).encode(out).is_ok(),
    };
    if ok {
        out.extend_from_slice(b"\r\n");
    } else {
        out.truncate(start);
    }
}

/// The MLSx facts of `entry`, limited to the `selected` fact names (OPTS MLST).
fn mlsx_entry(selected: &[Vec<u8>], entry: &DirEntry) -> MlsxEntry {
    let selected = |name: &[u8]| selected.iter().any(|s| s.eq_ignore_ascii_case(name));
    let mut facts = Vec::new();
    let mut fact = |name: &[u8], value: Vec<u8>| {
        if selected(name) {
            facts.push(Fact {
                name: name.to_vec(),
                value,
            });
        }
    };
    let kind: &[u8] = match entry.kind {
        DirEntryKind::File => b"file",
        DirEntryKind::Directory => b"dir",
        DirEntryKind::Symlink => b"OS.unix=symlink",
    };
    fact(b"type", kind.to_vec());
    if entry.kind != DirEntryKind::Directory {
        fact(b"size", format!("{}", entry.size).into_bytes());
    }
    if let Some(modified) = entry.modified {
        let mut value = Vec::new();
        modified.encode(&mut value);
        fact(b"modify", value);
    }
    let mut perm = Vec::new();
    entry.permissions.encode(&mut perm);
    fact(b"perm", perm);
    if let Some(unique) = &entry.unique {
        fact(b"unique", unique.clone());
    }
    if let Some(mode) = entry.mode {
        fact(b"UNIX.mode", format!("{:04o}", mode & 0o7777).into_bytes());
    }
    MlsxEntry {
        facts,
        name: entry.name.clone(),
    }
}

/// The `ls -l` form of an entry.
fn list_entry(entry: &DirEntry) -> ListEntry {
    let (kind, default_mode) = match entry.kind {
        DirEntryKind::File => (ListEntryKind::File, 0o644),
        DirEntryKind::Directory => (ListEntryKind::Directory, 0o755),
        DirEntryKind::Symlink => (ListEntryKind::Symlink, 0o777),
    };
    let mode = entry.mode.unwrap_or(default_mode);
    let mut permissions = Vec::with_capacity(9);
    for shift in [6u32, 3, 0] {
        let bits = (mode >> shift) & 0o7;
        permissions.push(if bits & 4 != 0 { b'r' } else { b'-' });
        permissions.push(if bits & 2 != 0 { b'w' } else { b'-' });
        permissions.push(if bits & 1 != 0 { b'x' } else { b'-' });
    }
    let time = entry.modified.map_or(
        ListTime::Dated {
            year: 1970,
            month: 1,
            day: 1,
        },
        |t| ListTime::Dated {
            year: t.year,
            month: t.month,
            day: t.day,
        },
    );
    ListEntry {
        kind,
        permissions,
        links: Some(1),
        owner: None,
        group: None,
        size: entry.size,
        device: None,
        time,
        name: entry.name.clone(),
        link_target: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::listing::{FtpTime, Permissions};
    use crate::io::Instant;
    use crate::server::ServerSessionConfig;
    use alloc::string::String;
    use core::net::SocketAddr;

    fn session() -> ServerSession {
        let peer: SocketAddr = "192.0.2.1:50000".parse().unwrap();
        let local: SocketAddr = "192.0.2.2:21".parse().unwrap();
        ServerSession::new(
            ServerSessionConfig::plaintext(),
            peer,
            local,
            Instant::from_nanos(0),
        )
    }

    fn file() -> DirEntry {
        DirEntry {
            name: b"a.txt".to_vec(),
            kind: DirEntryKind::File,
            size: 42,
            modified: Some(FtpTime {
                year: 2024,
                month: 1,
                day: 2,
                hour: 3,
                minute: 4,
                second: 5,
                nanos: 0,
                fraction_digits: 0,
            }),
            permissions: Permissions::READ | Permissions::WRITE,
            mode: Some(0o640),
            unique: None,
        }
    }

    fn dir() -> DirEntry {
        DirEntry {
            name: b"sub".to_vec(),
            kind: DirEntryKind::Directory,
            size: 4096,
            modified: None,
            permissions: Permissions::ENTER | Permissions::LIST,
            mode: None,
            unique: Some(b"u1".to_vec()),
        }
    }

    fn format(format: ListFormat, entries: &[DirEntry]) -> String {
        String::from_utf8(session().format_listing(format, entries)).unwrap()
    }

    #[test]
    fn list_is_ls_l() {
        assert_eq!(
            format(ListFormat::List, &[file()]),
            "-rw-r-----    1 ftp      ftp            42 Jan  2  2024 a.txt\r\n"
        );
    }

    #[test]
    fn list_defaults_mode_and_date() {
        // No mode: 755 for a directory; no time: 1 Jan 1970.
        assert_eq!(
            format(ListFormat::List, &[dir()]),
            "drwxr-xr-x    1 ftp      ftp          4096 Jan  1  1970 sub\r\n"
        );
    }

    #[test]
    fn nlst_is_names_only() {
        assert_eq!(
            format(ListFormat::Nlst, &[file(), dir()]),
            "a.txt\r\nsub\r\n"
        );
    }

    #[test]
    fn mlsd_lists_the_selected_facts() {
        assert_eq!(
            format(ListFormat::Mlsd, &[file()]),
            "type=file;size=42;modify=20240102030405;perm=rw;UNIX.mode=0640; a.txt\r\n"
        );
        // A directory has no size fact.
        assert_eq!(
            format(ListFormat::Mlsd, &[dir()]),
            "type=dir;perm=el;unique=u1; sub\r\n"
        );
    }

    #[test]
    fn a_name_with_a_line_break_is_left_out() {
        let mut bad = file();
        bad.name = b"evil\r\nname".to_vec();
        for list_format in [ListFormat::List, ListFormat::Nlst, ListFormat::Mlsd] {
            let out = format(list_format, &[bad.clone(), dir()]);
            assert!(!out.contains("evil"), "{list_format:?}: {out}");
            assert!(out.ends_with("sub\r\n"), "{list_format:?}: {out}");
            assert_eq!(out.matches("\r\n").count(), 1, "{list_format:?}: {out}");
        }
    }
}
