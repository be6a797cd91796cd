//! Directory entries as `ls -l` lines, and what recursive transfers need to know about them.

use ftps_proto::codec::listing::{EntryKind, ListEntryKind, ListLine, ListTime, MlsxEntry};
use ftps_std::ListingEntry;

/// What a listed name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link, `.`/`..`, a device, or unknown: not followed by recursive transfers.
    Other,
}

/// The name and kind of an entry (`None` for total lines and unparsable lines).
pub(crate) fn name_and_kind(entry: &ListingEntry) -> Option<(&[u8], Kind)> {
    match entry {
        ListingEntry::Mlsd(e) => {
            let kind = match e.kind() {
                Some(EntryKind::File) => Kind::File,
                Some(EntryKind::Dir) => Kind::Dir,
                _ => Kind::Other,
            };
            Some((&e.name, kind))
        }
        ListingEntry::List(ListLine::Entry(e)) => {
            let kind = match e.kind {
                ListEntryKind::File => Kind::File,
                ListEntryKind::Directory => Kind::Dir,
                _ => Kind::Other,
            };
            Some((&e.name, kind))
        }
        ListingEntry::Name(name) => Some((name, Kind::Other)),
        _ => None,
    }
}

/// One `ls -l` style line, or `None` for lines with nothing to show (`total N`).
pub(crate) fn format_entry(entry: &ListingEntry) -> Option<String> {
    match entry {
        ListingEntry::Mlsd(e) => Some(format_mlsd(e)),
        ListingEntry::List(ListLine::Entry(e)) => {
            let kind = match e.kind {
                ListEntryKind::File => '-',
                ListEntryKind::Directory => 'd',
                ListEntryKind::Symlink => 'l',
                ListEntryKind::Other(c) => char::from(c),
            };
            let mut name = lossy(&e.name);
            if let Some(target) = &e.link_target {
                name.push_str(" -> ");
                name.push_str(&lossy(target));
            }
            Some(line(
                &format!("{kind}{}", lossy(&e.permissions)),
                e.links,
                e.owner.as_deref().map(lossy).as_deref().unwrap_or("-"),
                e.group.as_deref().map(lossy).as_deref().unwrap_or("-"),
                e.size,
                &list_time(&e.time),
                &name,
            ))
        }
        ListingEntry::List(ListLine::Total(_)) => None,
        ListingEntry::List(ListLine::Unparsed(raw)) => Some(lossy(raw)),
        ListingEntry::Name(name) => Some(lossy(name)),
        ListingEntry::Invalid(error) => Some(format!("? (unparsable entry: {error})")),
    }
}

fn format_mlsd(e: &MlsxEntry) -> String {
    let kind = match e.kind() {
        Some(EntryKind::Dir | EntryKind::Cdir | EntryKind::Pdir) => 'd',
        Some(EntryKind::OsSpecific { .. }) => 'l',
        _ => '-',
    };
    let mode = match (e.unix_mode(), e.fact(b"perm")) {
        (Some(mode), _) => rwx(mode),
        (None, Some(perm)) => perm_as_rwx(perm),
        (None, None) => "?????????".to_owned(),
    };
    let fact = |names: &[&[u8]]| {
        names
            .iter()
            .find_map(|n| e.fact(n))
            .map(lossy)
            .unwrap_or_else(|| "-".to_owned())
    };
    let time = e.modify().map_or_else(
        || "                ".to_owned(),
        |t| {
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}",
                t.year, t.month, t.day, t.hour, t.minute
            )
        },
    );
    line(
        &format!("{kind}{mode}"),
        None,
        &fact(&[b"unix.ownername", b"unix.owner", b"unix.uid"]),
        &fact(&[b"unix.groupname", b"unix.group", b"unix.gid"]),
        e.size().unwrap_or(0),
        &time,
        &lossy(&e.name),
    )
}

fn line(
    mode: &str,
    links: Option<u64>,
    owner: &str,
    group: &str,
    size: u64,
    time: &str,
    name: &str,
) -> String {
    let links = links.map_or_else(|| "-".to_owned(), |l| l.to_string());
    format!("{mode:<10} {links:>3} {owner:<8} {group:<8} {size:>12} {time} {name}")
}

fn list_time(time: &ListTime) -> String {
    match *time {
        // The year is not in the listing; show what the server sent.
        ListTime::Recent {
            month,
            day,
            hour,
            minute,
        } => format!("     {month:02}-{day:02} {hour:02}:{minute:02}"),
        ListTime::Dated { year, month, day } => format!("{year:04}-{month:02}-{day:02}      "),
        ListTime::DateTime {
            year,
            month,
            day,
            hour,
            minute,
        } => format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}"),
    }
}

/// The RFC 3659 `perm` fact, which says what *this login* may do, shown in the owner
/// columns: `r` (file) or `l` (directory) read, any of `w a c d f m` write, `e` enter.
fn perm_as_rwx(perm: &[u8]) -> String {
    let has = |letters: &[u8]| {
        perm.iter()
            .any(|p| letters.contains(&p.to_ascii_lowercase()))
    };
    let mut out = String::with_capacity(9);
    out.push(if has(b"rl") { 'r' } else { '-' });
    out.push(if has(b"wacdfm") { 'w' } else { '-' });
    out.push(if has(b"e") { 'x' } else { '-' });
    out.push_str("------");
    out
}

fn rwx(mode: u32) -> String {
    let mut out = String::with_capacity(9);
    for shift in [6, 3, 0] {
        let bits = (mode >> shift) & 0o7;
        out.push(if bits & 4 != 0 { 'r' } else { '-' });
        out.push(if bits & 2 != 0 { 'w' } else { '-' });
        out.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    out
}

fn lossy(bytes: &[u8]) -> String {
    // Control characters from the server are not sent to the terminal as they are.
    String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// A remote name that is safe to use as one local path component: no separators, not `.` or
/// `..`, no NUL (a hostile server could otherwise write outside the target directory).
pub(crate) fn safe_component(name: &[u8]) -> Option<&str> {
    let name = std::str::from_utf8(name).ok()?;
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.contains(['/', '\\', '\0'])
        || name.chars().any(char::is_control);
    (!bad).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ftps_proto::codec::listing::{ListEntry, parse_mlsx_entry};

    #[test]
    fn mlsd_entry_as_ls_line() {
        let entry = parse_mlsx_entry(
            b"type=file;size=1234;modify=20240102030405;unix.mode=0644;unix.uid=1000; a b.txt",
        )
        .unwrap();
        let text = format_entry(&ListingEntry::Mlsd(entry)).unwrap();
        assert!(text.starts_with("-rw-r--r--"), "{text}");
        assert!(text.contains(" 1234 2024-01-02 03:04 a b.txt"), "{text}");
        assert!(text.contains("1000"), "{text}");
    }

    #[test]
    fn mlsd_perm_fact_when_no_unix_mode() {
        let entry = parse_mlsx_entry(b"type=dir;perm=flcdmpe;size=4096; sub").unwrap();
        let text = format_entry(&ListingEntry::Mlsd(entry)).unwrap();
        assert!(text.starts_with("drwx------"), "{text}");
        let entry = parse_mlsx_entry(b"type=file;perm=r;size=1; ro").unwrap();
        let text = format_entry(&ListingEntry::Mlsd(entry)).unwrap();
        assert!(text.starts_with("-r--------"), "{text}");
    }

    #[test]
    fn list_entry_as_ls_line() {
        let entry = ListEntry {
            kind: ListEntryKind::Symlink,
            permissions: b"rwxrwxrwx".to_vec(),
            links: Some(1),
            owner: Some(b"ftp".to_vec()),
            group: Some(b"ftp".to_vec()),
            size: 7,
            device: None,
            time: ListTime::Dated {
                year: 2020,
                month: 5,
                day: 6,
            },
            name: b"link\x1b[2J".to_vec(),
            link_target: Some(b"target".to_vec()),
        };
        let text = format_entry(&ListingEntry::List(ListLine::Entry(entry))).unwrap();
        assert!(text.starts_with("lrwxrwxrwx   1 ftp"), "{text}");
        assert!(
            text.ends_with("2020-05-06       link?[2J -> target"),
            "{text}"
        );
        assert_eq!(format_entry(&ListingEntry::List(ListLine::Total(3))), None);
    }

    #[test]
    fn unsafe_names_are_refused() {
        for bad in [
            &b".."[..],
            b".",
            b"",
            b"a/b",
            b"..\\x",
            b"a\0",
            b"\xff",
            b"a\nb",
        ] {
            assert_eq!(safe_component(bad), None, "{bad:?}");
        }
        assert_eq!(safe_component(b"file.txt"), Some("file.txt"));
    }
}
