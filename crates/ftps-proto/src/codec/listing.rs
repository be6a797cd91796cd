//! Directory listings: machine-readable `MLSD`/`MLST` entries (RFC 3659 §7), Unix `ls -l` and
//! DOS-style `LIST` lines, and a bounded splitter for listing data arriving in chunks.
//!
//! - [`parse_mlsx_entry`] / [`parse_mlst_entry`] read one entry line (`facts SP pathname`), keeping
//!   every fact as given; [`MlsxEntry`] adds typed, case-insensitive accessors
//!   ([`MlsxEntry::kind`], [`MlsxEntry::size`], [`MlsxEntry::modify`], …) and an encoder for the
//!   server role. [`FtpTime`] is the RFC 3659 `time-val`, with calendar arithmetic and no clock.
//! - [`parse_mlst_feature_facts`] and [`parse_opts_mlst_facts`] read the fact lists of the
//!   ` MLST …` FEAT line and of `OPTS MLST` (RFC 3659 §7.8, §7.9).
//! - [`parse_list_line`] never fails: a `LIST` line is either understood as a [`ListEntry`], a
//!   `total N` header, or kept raw, because listing formats vary from server to server.
//! - [`ListingLines`] cuts the bytes of a data connection into lines (CRLF or LF), bounding the
//!   length of a line so memory stays bounded whatever the peer sends.
//!
//! The parsers work on bytes: pathnames are usually UTF-8 (RFC 3659 §2.2, RFC 2640) but are kept
//! as raw bytes so no name is ever lost or altered.

use alloc::format;

use super::line::LineFramer;
use alloc::vec::Vec;
use core::fmt;

/// The default longest listing line [`ListingLines`] accepts: generous for MLSD lines with long
/// names and many facts (RFC 3659 sets no maximum), small enough to bound memory.
pub const DEFAULT_MAX_LISTING_LINE_LEN: usize = 16 * 1024;

/// Why a listing line or an `MLSx` entry was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ListingError {
    /// A line of listing data is longer than the configured limit; it was skipped.
    #[error("a listing line is longer than {limit} bytes")]
    LineTooLong {
        /// The configured limit, in bytes, excluding the line ending.
        limit: usize,
    },
    /// An `MLSx` entry line has no space separating the facts from the pathname.
    #[error("an MLSx entry has no space between facts and pathname")]
    MissingFactsSeparator,
    /// An `MLST` entry line on the control channel does not start with a space (RFC 3659 §7.2).
    #[error("an MLST entry line must start with one space")]
    MissingLeadingSpace,
    /// An `MLSx` entry or a `LIST` entry to encode has an empty pathname.
    #[error("the pathname is empty")]
    EmptyPathname,
    /// A CR or LF inside an `MLSx` entry or a pathname to encode (RFC 3659 §7.2 forbids it).
    #[error("CR or LF inside a listing entry")]
    LineBreakInEntry,
    /// A fact is not `name=value` with a non-empty name.
    #[error("a fact is not name=value with a non-empty name")]
    MalformedFact,
    /// The facts of an `MLSx` entry do not end with `;`.
    #[error("the facts of an MLSx entry do not end with ';'")]
    UnterminatedFacts,
    /// A fact name to encode is empty or holds a space, `;`, `=` or a control character.
    #[error("a fact name is empty or holds a space, ';', '=' or a control character")]
    InvalidFactName,
    /// A fact value to encode holds a space, `;` or a control character.
    #[error("a fact value holds a space, ';' or a control character")]
    InvalidFactValue,
    /// A fact list (`FEAT` `MLST` line or `OPTS MLST` argument) is malformed.
    #[error("malformed MLST fact list")]
    MalformedFactList,
    /// A field of a `LIST` entry to encode cannot be written so that it parses back.
    #[error("a LIST entry field cannot be encoded: {field}")]
    InvalidListField {
        /// Which field: `kind`, `permissions`, `owner`, `group`, `time`, `name` or `link_target`.
        field: &'static str,
    },
}

/// Why an RFC 3659 `time-val` (checklist X01) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TimeValError {
    /// The part before the optional fraction is not exactly 14 digits.
    #[error("a time-val needs exactly 14 digits before the optional fraction")]
    WrongLength,
    /// A character other than digits and one `.`.
    #[error("a time-val holds a character other than digits and one '.'")]
    NotDigit,
    /// A `.` without a digit after it.
    #[error("a '.' in a time-val must be followed by at least one digit")]
    EmptyFraction,
    /// A field is outside its range (year 1000–9999, a real calendar day, hour 0–23, minute
    /// 0–59, second 0–60).
    #[error("a time-val field is out of range")]
    OutOfRange,
}

// ---- time-val ----------------------------------------------------------------------------------

/// An RFC 3659 `time-val` (checklist X01): a UTC Gregorian date and time, as in `modify=` facts
/// and `MDTM` replies.
///
/// `fraction_digits` records how many fraction digits the source had (0–9), so encoding never
/// claims more precision than the source (X01). Fractions longer than nine digits are truncated
/// to nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FtpTime {
    /// Year, 1000–9999.
    pub year: u16,
    /// Month, 1–12.
    pub month: u8,
    /// Day of the month, 1–31 (and valid for the month).
    pub day: u8,
    /// Hour, 0–23.
    pub hour: u8,
    /// Minute, 0–59.
    pub minute: u8,
    /// Second, 0–60 (60 only in a leap second).
    pub second: u8,
    /// Fraction of the second in nanoseconds, below 1 000 000 000.
    pub nanos: u32,
    /// How many fraction digits to write (0 = none, at most 9).
    pub fraction_digits: u8,
}

/// English month abbreviations as `ls` and `time-val` consumers use them.
const MONTH_NAMES: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

const fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

const fn days_in_month(year: i64, month: u8) -> u8 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date. Counting years from March puts the leap
/// day at the end of the counted year, so each 400-year era has a fixed day count (146 097).
fn days_from_civil(year: i64, month: u8, day: u8) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (i64::from(month) + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    // 719 468 days lie between 0000-03-01 and 1970-01-01.
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`]: (year, month, day).
fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    // Both values are small by construction (1–31 and 1–12).
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u8;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let month = month as u8;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The value of a run of ASCII digits that the caller checked and that fits in `u32`.
fn small_decimal(digits: &[u8]) -> u32 {
    digits
        .iter()
        .fold(0, |value, digit| value * 10 + u32::from(digit - b'0'))
}

fn all_digits(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.iter().all(u8::is_ascii_digit)
}

/// Parses a non-empty decimal `u64`; `None` for anything else, including overflow.
fn parse_u64(digits: &[u8]) -> Option<u64> {
    if !all_digits(digits) {
        return None;
    }
    digits.iter().try_fold(0_u64, |value, digit| {
        value.checked_mul(10)?.checked_add(u64::from(digit - b'0'))
    })
}

fn parse_u32(digits: &[u8]) -> Option<u32> {
    parse_u64(digits).and_then(|value| u32::try_from(value).ok())
}

const POWERS_OF_TEN: [u32; 10] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
];

impl FtpTime {
    /// Parses a `time-val` strictly (checklist X01): exactly 14 digits `YYYYMMDDHHMMSS`,
    /// optionally `.` and one or more digits; every field in range, the day valid for its month.
    pub fn parse(text: &[u8]) -> Result<Self, TimeValError> {
        let (main, fraction) = match text.iter().position(|&byte| byte == b'.') {
            Some(dot) => (&text[..dot], Some(&text[dot + 1..])),
            None => (text, None),
        };
        if !main.iter().all(u8::is_ascii_digit) {
            return Err(TimeValError::NotDigit);
        }
        if main.len() != 14 {
            return Err(TimeValError::WrongLength);
        }
        let (nanos, fraction_digits) = match fraction {
            None => (0, 0),
            Some([]) => return Err(TimeValError::EmptyFraction),
            Some(digits) if !digits.iter().all(u8::is_ascii_digit) => {
                return Err(TimeValError::NotDigit);
            }
            Some(digits) => {
                let kept = &digits[..digits.len().min(9)];
                let scale = POWERS_OF_TEN[9 - kept.len()];
                (small_decimal(kept) * scale, kept.len() as u8)
            }
        };
        // The casts are exact: each field has at most four digits and is range-checked below.
        let time = Self {
            year: small_decimal(&main[0..4]) as u16,
            month: small_decimal(&main[4..6]) as u8,
            day: small_decimal(&main[6..8]) as u8,
            hour: small_decimal(&main[8..10]) as u8,
            minute: small_decimal(&main[10..12]) as u8,
            second: small_decimal(&main[12..14]) as u8,
            nanos,
            fraction_digits,
        };
        time.validate()?;
        Ok(time)
    }

    /// Checks every field against the ranges of checklist X01, and `nanos` and
    /// `fraction_digits` against their own limits.
    pub fn validate(&self) -> Result<(), TimeValError> {
        let in_range = (1000..=9999).contains(&self.year)
            && (1..=12).contains(&self.month)
            && (1..=days_in_month(i64::from(self.year), self.month)).contains(&self.day)
            && self.hour <= 23
            && self.minute <= 59
            // X01 allows 60 for a leap second; without a leap-second table it cannot be checked
            // further.
            && self.second <= 60
            && self.nanos < 1_000_000_000
            && self.fraction_digits <= 9;
        if in_range {
            Ok(())
        } else {
            Err(TimeValError::OutOfRange)
        }
    }

    /// Appends the `time-val` text, with `fraction_digits` fraction digits (the nanoseconds are
    /// truncated to that precision). The fields are assumed valid (see [`FtpTime::validate`]).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(format!("{self}").as_bytes());
    }

    /// Seconds since 1970-01-01T00:00:00Z, ignoring the fraction. A leap second `:60` counts
    /// as the next minute's `:00`, as POSIX time has no leap seconds.
    pub fn to_unix_seconds(&self) -> i64 {
        days_from_civil(i64::from(self.year), self.month, self.day) * 86_400
            + i64::from(self.hour) * 3_600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }

    /// The `time-val` of a Unix time in whole seconds (no fraction), or `None` outside the years
    /// 1000–9999 that a `time-val` can hold.
    pub fn from_unix_seconds(seconds: i64) -> Option<Self> {
        let days = seconds.div_euclid(86_400);
        let second_of_day = seconds.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        if !(1000..=9999).contains(&year) {
            return None;
        }
        Some(Self {
            year: year as u16,
            month,
            day,
            hour: (second_of_day / 3_600) as u8,
            minute: (second_of_day / 60 % 60) as u8,
            second: (second_of_day % 60) as u8,
            nanos: 0,
            fraction_digits: 0,
        })
    }
}

impl fmt::Display for FtpTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}{:02}{:02}{:02}{:02}{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )?;
        let digits = usize::from(self.fraction_digits.min(9));
        if digits > 0 {
            let fraction = self.nanos / POWERS_OF_TEN[9 - digits];
            write!(f, ".{fraction:0digits$}")?;
        }
        Ok(())
    }
}

// ---- perm fact ---------------------------------------------------------------------------------

/// The `perm` fact of RFC 3659 §7.5.5 (checklist X08): which commands the server would allow on
/// the entry, as a set of flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Permissions {
    bits: u16,
}

impl Permissions {
    /// `a`: APPE may append to the file.
    pub const APPEND: Self = Self { bits: 1 };
    /// `c`: STOU/STOR may create files in the directory.
    pub const CREATE: Self = Self { bits: 1 << 1 };
    /// `d`: DELE or RMD may delete the entry.
    pub const DELETE: Self = Self { bits: 1 << 2 };
    /// `e`: CWD may enter the directory.
    pub const ENTER: Self = Self { bits: 1 << 3 };
    /// `f`: RNFR may rename the entry.
    pub const RENAME: Self = Self { bits: 1 << 4 };
    /// `l`: LIST, NLST and MLSD may list the directory.
    pub const LIST: Self = Self { bits: 1 << 5 };
    /// `m`: MKD may create directories inside.
    pub const MAKE_DIR: Self = Self { bits: 1 << 6 };
    /// `p`: entries inside the directory may be deleted (purge).
    pub const PURGE: Self = Self { bits: 1 << 7 };
    /// `r`: RETR may read the file.
    pub const READ: Self = Self { bits: 1 << 8 };
    /// `w`: STOR may write the file.
    pub const WRITE: Self = Self { bits: 1 << 9 };

    /// The letters in the order [`Permissions::encode`] writes them.
    const LETTERS: [(u8, Self); 10] = [
        (b'a', Self::APPEND),
        (b'c', Self::CREATE),
        (b'd', Self::DELETE),
        (b'e', Self::ENTER),
        (b'f', Self::RENAME),
        (b'l', Self::LIST),
        (b'm', Self::MAKE_DIR),
        (b'p', Self::PURGE),
        (b'r', Self::READ),
        (b'w', Self::WRITE),
    ];

    /// No permission.
    pub const fn empty() -> Self {
        Self { bits: 0 }
    }

    /// The flags as bits (bit 0 = `a` … bit 9 = `w`, in the order of the constants).
    pub const fn bits(self) -> u16 {
        self.bits
    }

    /// The flags of the given bits; bits above 9 are dropped.
    pub const fn from_bits(bits: u16) -> Self {
        Self { bits: bits & 0x3ff }
    }

    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: Self) -> bool {
        self.bits & other.bits == other.bits
    }

    /// Every flag of `self` and of `other`.
    pub const fn union(self, other: Self) -> Self {
        Self {
            bits: self.bits | other.bits,
        }
    }

    /// Reads a `perm` value: unordered letters, case-insensitive. Letters RFC 3659 does not
    /// define are ignored, as later extensions may add some.
    pub fn from_letters(letters: &[u8]) -> Self {
        letters.iter().fold(Self::empty(), |permissions, letter| {
            let letter = letter.to_ascii_lowercase();
            Self::LETTERS
                .iter()
                .find(|(known, _)| *known == letter)
                .map_or(permissions, |(_, flag)| permissions.union(*flag))
        })
    }

    /// Appends the `perm` value: the set letters, lower case, in alphabetical order.
    pub fn encode(self, out: &mut Vec<u8>) {
        for (letter, flag) in Self::LETTERS {
            if self.contains(flag) {
                out.push(letter);
            }
        }
    }
}

impl core::ops::BitOr for Permissions {
    type Output = Self;

    fn bitor(self, other: Self) -> Self {
        self.union(other)
    }
}

// ---- MLSx entries ------------------------------------------------------------------------------

/// The `type` fact of an `MLSx` entry (RFC 3659 §7.5.1); values are case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// `file`.
    File,
    /// `cdir`: the directory being listed.
    Cdir,
    /// `pdir`: a parent of the listed directory.
    Pdir,
    /// `dir`: a directory inside the listed one.
    Dir,
    /// `OS.<os>=<kind>`, e.g. `OS.unix=slink:/target` gives os `unix`, kind `slink:/target`.
    OsSpecific {
        /// The operating-system name, as given.
        os: Vec<u8>,
        /// The OS-specific kind, as given.
        kind: Vec<u8>,
    },
    /// Any other value, as given.
    Other(Vec<u8>),
}

impl EntryKind {
    /// Reads a `type` value.
    pub fn from_value(value: &[u8]) -> Self {
        const OS_PREFIX: &[u8] = b"OS.";
        if value.len() > OS_PREFIX.len() && value[..3].eq_ignore_ascii_case(OS_PREFIX) {
            let rest = &value[OS_PREFIX.len()..];
            if let Some(equals) = rest.iter().position(|&byte| byte == b'=') {
                return Self::OsSpecific {
                    os: rest[..equals].to_vec(),
                    kind: rest[equals + 1..].to_vec(),
                };
            }
        }
        let keyword = |word: &[u8]| value.eq_ignore_ascii_case(word);
        if keyword(b"file") {
            Self::File
        } else if keyword(b"cdir") {
            Self::Cdir
        } else if keyword(b"pdir") {
            Self::Pdir
        } else if keyword(b"dir") {
            Self::Dir
        } else {
            Self::Other(value.to_vec())
        }
    }

    /// Whether the entry is a directory (`cdir`, `pdir` or `dir`).
    pub const fn is_dir(&self) -> bool {
        matches!(self, Self::Cdir | Self::Pdir | Self::Dir)
    }

    /// Appends the `type` value.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::File => out.extend_from_slice(b"file"),
            Self::Cdir => out.extend_from_slice(b"cdir"),
            Self::Pdir => out.extend_from_slice(b"pdir"),
            Self::Dir => out.extend_from_slice(b"dir"),
            Self::OsSpecific { os, kind } => {
                out.extend_from_slice(b"OS.");
                out.extend_from_slice(os);
                out.push(b'=');
                out.extend_from_slice(kind);
            }
            Self::Other(value) => out.extend_from_slice(value),
        }
    }
}

/// One fact of an `MLSx` entry, exactly as given (checklist X08).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fact {
    /// The fact name (case-insensitive when compared).
    pub name: Vec<u8>,
    /// The value, which may contain `=`.
    pub value: Vec<u8>,
}

/// One `MLSD` line or `MLST` entry: facts and a pathname (RFC 3659 §7.2, checklist X07).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct MlsxEntry {
    /// The facts in the order given; duplicates are kept (the accessors use the first).
    pub facts: Vec<Fact>,
    /// The pathname, raw bytes (may contain spaces).
    pub name: Vec<u8>,
}

/// Parses one `MLSD` data line, without its CRLF: `facts SP pathname` (RFC 3659 §7.2, checklist
/// X07, X08).
///
/// The facts end at the first space; a line with no facts starts with the space. The facts must
/// be `1*(name "=" value ";")`: a missing final `;` is refused rather than guessed. Fact values
/// may contain `=`. The pathname is everything after that space, spaces included, and must not
/// be empty or contain CR or LF.
pub fn parse_mlsx_entry(line: &[u8]) -> Result<MlsxEntry, ListingError> {
    if line.iter().any(|&byte| byte == b'\r' || byte == b'\n') {
        return Err(ListingError::LineBreakInEntry);
    }
    let space = line
        .iter()
        .position(|&byte| byte == b' ')
        .ok_or(ListingError::MissingFactsSeparator)?;
    let (facts_text, name) = (&line[..space], &line[space + 1..]);
    if name.is_empty() {
        return Err(ListingError::EmptyPathname);
    }
    let mut facts = Vec::new();
    if let Some(body) = facts_text.strip_suffix(b";") {
        for fact in body.split(|&byte| byte == b';') {
            let equals = fact
                .iter()
                .position(|&byte| byte == b'=')
                .ok_or(ListingError::MalformedFact)?;
            if equals == 0 {
                return Err(ListingError::MalformedFact);
            }
            facts.push(Fact {
                name: fact[..equals].to_vec(),
                value: fact[equals + 1..].to_vec(),
            });
        }
    } else if !facts_text.is_empty() {
        return Err(ListingError::UnterminatedFacts);
    }
    Ok(MlsxEntry {
        facts,
        name: name.to_vec(),
    })
}

/// Parses one entry line of an `MLST` reply on the control channel, without its CRLF: one space,
/// then an entry as for [`parse_mlsx_entry`] (RFC 3659 §7.2, checklist X06). A line with no facts
/// therefore starts with two spaces.
pub fn parse_mlst_entry(line: &[u8]) -> Result<MlsxEntry, ListingError> {
    let entry = line
        .strip_prefix(b" ")
        .ok_or(ListingError::MissingLeadingSpace)?;
    parse_mlsx_entry(entry)
}

/// Whether `byte` may appear in a fact name or value written by this crate: printable, not a
/// space, not `;`. Bytes above 127 pass so UTF-8 owner names survive.
const fn is_fact_byte(byte: u8) -> bool {
    byte > b' ' && byte != 0x7f && byte != b';'
}

fn fact_name_is_valid(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|&byte| is_fact_byte(byte) && byte != b'=')
}

impl MlsxEntry {
    /// The value of the first fact with this name (compared case-insensitively).
    pub fn fact(&self, name: &[u8]) -> Option<&[u8]> {
        self.facts
            .iter()
            .find(|fact| fact.name.eq_ignore_ascii_case(name))
            .map(|fact| fact.value.as_slice())
    }

    /// The `type` fact.
    pub fn kind(&self) -> Option<EntryKind> {
        self.fact(b"type").map(EntryKind::from_value)
    }

    /// The `size` fact in octets (approximate by RFC 3659; use SIZE for an exact value). `None`
    /// when absent or not a decimal number that fits in `u64`.
    pub fn size(&self) -> Option<u64> {
        self.fact(b"size").and_then(parse_u64)
    }

    /// The `modify` fact; `None` when absent or not a valid `time-val`.
    pub fn modify(&self) -> Option<FtpTime> {
        self.fact(b"modify")
            .and_then(|value| FtpTime::parse(value).ok())
    }

    /// The `create` fact; `None` when absent or not a valid `time-val`.
    pub fn create(&self) -> Option<FtpTime> {
        self.fact(b"create")
            .and_then(|value| FtpTime::parse(value).ok())
    }

    /// The `perm` fact.
    pub fn perm(&self) -> Option<Permissions> {
        self.fact(b"perm").map(Permissions::from_letters)
    }

    /// The `unique` fact: an opaque, case-sensitive token.
    pub fn unique(&self) -> Option<&[u8]> {
        self.fact(b"unique")
    }

    /// The de-facto `UNIX.mode` fact, an octal number such as `0644`; `None` when absent or not
    /// octal digits that fit in `u32`.
    pub fn unix_mode(&self) -> Option<u32> {
        let digits = self.fact(b"UNIX.mode")?;
        if digits.is_empty() {
            return None;
        }
        digits.iter().try_fold(0_u32, |mode, &digit| {
            if !(b'0'..=b'7').contains(&digit) {
                return None;
            }
            mode.checked_mul(8)?.checked_add(u32::from(digit - b'0'))
        })
    }

    /// Keeps only the facts whose names are in `selected` (case-insensitive): what a server must
    /// do after `OPTS MLST` (RFC 3659 §7.9, checklist X10).
    pub fn retain_facts(&mut self, selected: &[Vec<u8>]) {
        self.facts.retain(|fact| {
            selected
                .iter()
                .any(|name| name.eq_ignore_ascii_case(&fact.name))
        });
    }

    /// Appends the entry as an `MLSD` line without its CRLF: `facts SP pathname` (server role;
    /// an `MLST` reply line is one space followed by the same).
    ///
    /// Refuses (writing nothing) an empty pathname or one with CR or LF (RFC 3659 §7.2: such a
    /// file must be encoded or left out by the caller), a fact name that is empty or holds a
    /// space, `;`, `=` or a control character, and a fact value with a space, `;` or a control
    /// character.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), ListingError> {
        if self.name.is_empty() {
            return Err(ListingError::EmptyPathname);
        }
        if self.name.iter().any(|&byte| byte == b'\r' || byte == b'\n') {
            return Err(ListingError::LineBreakInEntry);
        }
        for fact in &self.facts {
            if !fact_name_is_valid(&fact.name) {
                return Err(ListingError::InvalidFactName);
            }
            if !fact.value.iter().all(|&byte| is_fact_byte(byte)) {
                return Err(ListingError::InvalidFactValue);
            }
        }
        for fact in &self.facts {
            out.extend_from_slice(&fact.name);
            out.push(b'=');
            out.extend_from_slice(&fact.value);
            out.push(b';');
        }
        out.push(b' ');
        out.extend_from_slice(&self.name);
        Ok(())
    }
}

/// One fact of the ` MLST` FEAT line (RFC 3659 §7.8, checklist X09).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FactSupport {
    /// The fact name, as given.
    pub name: Vec<u8>,
    /// Whether the server sends it now (marked `*`).
    pub enabled: bool,
}

/// Parses the fact list of a ` MLST` FEAT line, the text after `MLST ` (for example
/// `type*;size*;modify*;perm;unique*;`). An empty text is an empty list. A missing final `;` is
/// tolerated here (the client only learns from it); empty names or spaces are not.
pub fn parse_mlst_feature_facts(text: &[u8]) -> Result<Vec<FactSupport>, ListingError> {
    let body = text.strip_suffix(b";").unwrap_or(text);
    if body.is_empty() {
        return Ok(Vec::new());
    }
    body.split(|&byte| byte == b';')
        .map(|item| {
            let (name, enabled) = match item.strip_suffix(b"*") {
                Some(name) => (name, true),
                None => (item, false),
            };
            if !fact_name_is_valid(name) || name.contains(&b'*') {
                return Err(ListingError::MalformedFactList);
            }
            Ok(FactSupport {
                name: name.to_vec(),
                enabled,
            })
        })
        .collect()
}

/// Appends the fact list of a ` MLST` FEAT line: `name[*];` for each fact (server role).
pub fn encode_mlst_feature_facts(
    facts: &[FactSupport],
    out: &mut Vec<u8>,
) -> Result<(), ListingError> {
    if facts
        .iter()
        .any(|fact| !fact_name_is_valid(&fact.name) || fact.name.contains(&b'*'))
    {
        return Err(ListingError::InvalidFactName);
    }
    for fact in facts {
        out.extend_from_slice(&fact.name);
        if fact.enabled {
            out.push(b'*');
        }
        out.push(b';');
    }
    Ok(())
}

/// Parses the argument of `OPTS MLST` after `MLST` and its space (server role, RFC 3659 §7.9,
/// checklist X10): `1*(factname ";")`, or empty for "names only". Any malformation (a space, an
/// empty name, a missing final `;`) is [`ListingError::MalformedFactList`], to be answered with
/// `501` leaving the selection unchanged.
pub fn parse_opts_mlst_facts(arg: &[u8]) -> Result<Vec<Vec<u8>>, ListingError> {
    if arg.is_empty() {
        return Ok(Vec::new());
    }
    let body = arg
        .strip_suffix(b";")
        .ok_or(ListingError::MalformedFactList)?;
    body.split(|&byte| byte == b';')
        .map(|name| {
            if fact_name_is_valid(name) {
                Ok(name.to_vec())
            } else {
                Err(ListingError::MalformedFactList)
            }
        })
        .collect()
}

// ---- LIST lines --------------------------------------------------------------------------------

/// One line of a `LIST` reply, as well as it could be understood.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ListLine {
    /// A file, directory or other entry.
    Entry(ListEntry),
    /// The `total N` header of `ls -l` (blocks; the unit depends on the server).
    Total(u64),
    /// A line in no recognised shape, kept as given.
    Unparsed(Vec<u8>),
}

/// The kind of a `LIST` entry, from the first character of the mode (or `<DIR>` in DOS style).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListEntryKind {
    /// `-`.
    File,
    /// `d`.
    Directory,
    /// `l`.
    Symlink,
    /// Any other type letter (`c`, `b`, `p`, `s`, `D`, …).
    Other(u8),
}

impl ListEntryKind {
    fn type_char(self) -> u8 {
        match self {
            Self::File => b'-',
            Self::Directory => b'd',
            Self::Symlink => b'l',
            Self::Other(letter) => letter,
        }
    }
}

/// Device numbers listed instead of a size for character and block devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeviceNumbers {
    /// Major number.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
}

/// The time column of a `LIST` entry. `ls` leaves out the year for recent files; the engine has
/// no clock, so it is kept unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListTime {
    /// `Mon DD HH:MM`: within about six months of the server's clock, year not given.
    Recent {
        /// Month, 1–12.
        month: u8,
        /// Day, 1–31.
        day: u8,
        /// Hour, 0–23.
        hour: u8,
        /// Minute, 0–59.
        minute: u8,
    },
    /// `Mon DD  YYYY`: an older or future date, time of day not given.
    Dated {
        /// Year.
        year: u16,
        /// Month, 1–12.
        month: u8,
        /// Day, 1–31.
        day: u8,
    },
    /// DOS style `MM-DD-YY  HH:MM(AM|PM)`: both. Two-digit years 00–69 are read as 2000–2069,
    /// 70–99 as 1970–1999.
    DateTime {
        /// Year.
        year: u16,
        /// Month, 1–12.
        month: u8,
        /// Day, 1–31.
        day: u8,
        /// Hour, 0–23.
        hour: u8,
        /// Minute, 0–59.
        minute: u8,
    },
}

/// One entry of a `LIST` reply.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ListEntry {
    /// File, directory, symbolic link or other.
    pub kind: ListEntryKind,
    /// The mode string after the type character, e.g. `rw-r--r--`, including an ACL or
    /// extended-attribute marker (`+`, `@`, `.`) when present; empty in DOS style.
    pub permissions: Vec<u8>,
    /// The hard-link count, when listed.
    pub links: Option<u64>,
    /// The owner column, when listed.
    pub owner: Option<Vec<u8>>,
    /// The group column, when listed.
    pub group: Option<Vec<u8>>,
    /// The size in bytes (0 for devices and DOS-style directories).
    pub size: u64,
    /// Device numbers, for device files that list them instead of a size.
    pub device: Option<DeviceNumbers>,
    /// The time column.
    pub time: ListTime,
    /// The name, exactly as given (spaces included; without ` -> target` for symlinks).
    pub name: Vec<u8>,
    /// The target of a symbolic link (`name -> target`).
    pub link_target: Option<Vec<u8>>,
}

/// What separates a symbolic link's name from its target in `ls -l`.
const SYMLINK_ARROW: &[u8] = b" -> ";

/// Byte ranges of the first `limit` fields of a line, separated by runs of spaces or tabs.
fn field_ranges(line: &[u8], limit: usize) -> Vec<(usize, usize)> {
    let mut ranges = Vec::new();
    let mut index = 0;
    while ranges.len() < limit {
        while line
            .get(index)
            .is_some_and(|&byte| byte == b' ' || byte == b'\t')
        {
            index += 1;
        }
        if index >= line.len() {
            break;
        }
        let start = index;
        while line
            .get(index)
            .is_some_and(|&byte| byte != b' ' && byte != b'\t')
        {
            index += 1;
        }
        ranges.push((start, index));
    }
    ranges
}

/// Reads an `ls` mode field: a type letter, nine permission characters and an optional ACL or
/// extended-attribute marker.
fn parse_mode(field: &[u8]) -> Option<(ListEntryKind, &[u8])> {
    let (&type_char, rest) = field.split_first()?;
    let kind = match type_char {
        b'-' => ListEntryKind::File,
        b'd' => ListEntryKind::Directory,
        b'l' => ListEntryKind::Symlink,
        letter if letter.is_ascii_alphabetic() => ListEntryKind::Other(letter),
        _ => return None,
    };
    mode_bits_are_valid(rest).then_some((kind, rest))
}

fn mode_bits_are_valid(bits_and_marker: &[u8]) -> bool {
    let Some((bits, marker)) = bits_and_marker.split_at_checked(9) else {
        return false;
    };
    bits.iter().all(|byte| b"rwxsStTlL-?".contains(byte))
        && matches!(marker, [] | [b'+' | b'@' | b'.'])
}

fn month_number(field: &[u8]) -> Option<u8> {
    MONTH_NAMES
        .iter()
        .position(|name| field.eq_ignore_ascii_case(*name))
        .map(|index| index as u8 + 1)
}

/// A one- or two-digit number within `range`.
fn short_number(field: &[u8], range: core::ops::RangeInclusive<u8>) -> Option<u8> {
    if !(1..=2).contains(&field.len()) || !all_digits(field) {
        return None;
    }
    let value = small_decimal(field) as u8;
    range.contains(&value).then_some(value)
}

/// `H:MM` or `HH:MM`.
fn clock(field: &[u8]) -> Option<(u8, u8)> {
    let colon = field.iter().position(|&byte| byte == b':')?;
    let minute = &field[colon + 1..];
    if minute.len() != 2 {
        return None;
    }
    Some((
        short_number(&field[..colon], 0..=23)?,
        short_number(minute, 0..=59)?,
    ))
}

fn list_time(month: &[u8], day: &[u8], time_or_year: &[u8]) -> Option<ListTime> {
    let month = month_number(month)?;
    let day = short_number(day, 1..=31)?;
    if let Some((hour, minute)) = clock(time_or_year) {
        return Some(ListTime::Recent {
            month,
            day,
            hour,
            minute,
        });
    }
    (time_or_year.len() == 4 && all_digits(time_or_year)).then(|| ListTime::Dated {
        year: small_decimal(time_or_year) as u16,
        month,
        day,
    })
}

/// A size, device numbers if listed instead, and the columns before them.
type SizeColumn<'a> = (u64, Option<DeviceNumbers>, &'a [&'a [u8]]);

/// The size column (or device numbers) at the end of `columns`, and the columns before it.
fn split_size<'a>(columns: &'a [&'a [u8]]) -> Option<SizeColumn<'a>> {
    if let [before @ .., major, minor] = columns {
        if let Some(major) = major.strip_suffix(b",") {
            if let (Some(major), Some(minor)) = (parse_u32(major), parse_u32(minor)) {
                return Some((0, Some(DeviceNumbers { major, minor }), before));
            }
        }
    }
    let (last, before) = columns.split_last()?;
    if let Some(comma) = last.iter().position(|&byte| byte == b',') {
        let major = parse_u32(&last[..comma])?;
        let minor = parse_u32(&last[comma + 1..])?;
        return Some((0, Some(DeviceNumbers { major, minor }), before));
    }
    Some((parse_u64(last)?, None, before))
}

/// Link count, owner and group, each when listed.
type OwnerColumns = (Option<u64>, Option<Vec<u8>>, Option<Vec<u8>>);

/// Links, owner and group from the columns between the mode and the size. With two columns a
/// numeric first one is the link count (`ls -o` leaves out the group); with one, a number is the
/// link count (`ls -go`) and anything else the owner. More than three columns are not understood.
fn owner_columns(columns: &[&[u8]]) -> Option<OwnerColumns> {
    Some(match *columns {
        [] => (None, None, None),
        [only] => match parse_u64(only) {
            Some(links) => (Some(links), None, None),
            None => (None, Some(only.to_vec()), None),
        },
        [first, second] => match parse_u64(first) {
            Some(links) => (Some(links), Some(second.to_vec()), None),
            None => (None, Some(first.to_vec()), Some(second.to_vec())),
        },
        [links, owner, group] => (
            Some(parse_u64(links)?),
            Some(owner.to_vec()),
            Some(group.to_vec()),
        ),
        _ => return None,
    })
}

/// Where to look for the month field, by field index: 5 is the usual
/// `mode links owner group size Mon`, 6 the same with `major, minor`; then the shapes with
/// fewer columns. Trying the usual shapes first keeps an owner called `jan` from being read as
/// a date.
const MONTH_FIELD_CANDIDATES: [usize; 6] = [5, 6, 2, 3, 4, 7];

fn parse_unix_line(line: &[u8]) -> Option<ListEntry> {
    let ranges = field_ranges(line, 10);
    let fields: Vec<&[u8]> = ranges
        .iter()
        .map(|&(start, end)| &line[start..end])
        .collect();
    let (kind, permissions) = parse_mode(fields.first()?)?;
    for month_index in MONTH_FIELD_CANDIDATES {
        let Some(&[month, day, time_or_year]) = fields.get(month_index..month_index + 3) else {
            continue;
        };
        let Some(time) = list_time(month, day, time_or_year) else {
            continue;
        };
        // The name starts after exactly one space; further spaces belong to it.
        let name_start = ranges[month_index + 2].1 + 1;
        if line.get(name_start - 1) != Some(&b' ') || name_start >= line.len() {
            continue;
        }
        let Some((size, device, before_size)) = split_size(&fields[1..month_index]) else {
            continue;
        };
        let Some((links, owner, group)) = owner_columns(before_size) else {
            continue;
        };
        let mut name = &line[name_start..];
        let mut link_target = None;
        if kind == ListEntryKind::Symlink {
            if let Some(arrow) = name.windows(4).position(|window| window == SYMLINK_ARROW) {
                link_target = Some(name[arrow + 4..].to_vec());
                name = &name[..arrow];
            }
        }
        return Some(ListEntry {
            kind,
            permissions: permissions.to_vec(),
            links,
            owner,
            group,
            size,
            device,
            time,
            name: name.to_vec(),
            link_target,
        });
    }
    None
}

/// `MM-DD-YY` or `MM-DD-YYYY`.
fn dos_date(field: &[u8]) -> Option<(u16, u8, u8)> {
    let mut parts = field.split(|&byte| byte == b'-');
    let (Some(month), Some(day), Some(year), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let month = short_number(month, 1..=12)?;
    let day = short_number(day, 1..=31)?;
    if !all_digits(year) {
        return None;
    }
    let year = match year.len() {
        2 => match small_decimal(year) as u16 {
            short @ 0..70 => 2000 + short,
            short => 1900 + short,
        },
        4 => small_decimal(year) as u16,
        _ => return None,
    };
    Some((year, month, day))
}

/// `HH:MMAM`, `HH:MMPM` (12-hour) or `HH:MM` (24-hour).
fn dos_clock(field: &[u8]) -> Option<(u8, u8)> {
    let suffix = field.len().checked_sub(2).map(|at| &field[at..]);
    let afternoon = match suffix {
        Some(suffix) if suffix.eq_ignore_ascii_case(b"AM") => Some(false),
        Some(suffix) if suffix.eq_ignore_ascii_case(b"PM") => Some(true),
        _ => None,
    };
    let Some(afternoon) = afternoon else {
        return clock(field);
    };
    let (hour, minute) = clock(&field[..field.len() - 2])?;
    if !(1..=12).contains(&hour) {
        return None;
    }
    Some((hour % 12 + if afternoon { 12 } else { 0 }, minute))
}

fn parse_dos_line(line: &[u8]) -> Option<ListEntry> {
    let ranges = field_ranges(line, 3);
    let &[date, clock_range, third] = ranges.as_slice() else {
        return None;
    };
    let (year, month, day) = dos_date(&line[date.0..date.1])?;
    let (hour, minute) = dos_clock(&line[clock_range.0..clock_range.1])?;
    let third_field = &line[third.0..third.1];
    let (kind, size, name_start) = if third_field.eq_ignore_ascii_case(b"<DIR>") {
        // Directory names follow a padded column: skip the whole run of spaces.
        let start = line[third.1..]
            .iter()
            .position(|&byte| byte != b' ')
            .map(|offset| third.1 + offset)?;
        (ListEntryKind::Directory, 0, start)
    } else {
        // The size is right-aligned against the name: exactly one space.
        (ListEntryKind::File, parse_u64(third_field)?, third.1 + 1)
    };
    if line.get(third.1) != Some(&b' ') || name_start >= line.len() {
        return None;
    }
    Some(ListEntry {
        kind,
        permissions: Vec::new(),
        links: None,
        owner: None,
        group: None,
        size,
        device: None,
        time: ListTime::DateTime {
            year,
            month,
            day,
            hour,
            minute,
        },
        name: line[name_start..].to_vec(),
        link_target: None,
    })
}

fn parse_total_line(line: &[u8]) -> Option<u64> {
    let ranges = field_ranges(line, 3);
    let &[word, number] = ranges.as_slice() else {
        return None;
    };
    if !line[word.0..word.1].eq_ignore_ascii_case(b"total") {
        return None;
    }
    parse_u64(&line[number.0..number.1])
}

/// Reads one `LIST` line (without its line ending). Never fails: a line in no recognised shape
/// is [`ListLine::Unparsed`].
///
/// Recognised shapes: `ls -l` lines with or without the link count or the group column, with
/// numeric or named owners, ACL and extended-attribute markers after the mode, device numbers
/// instead of a size, `Mon DD HH:MM` and `Mon DD  YYYY` times, names with spaces (the name is
/// everything after the single space following the time) and `name -> target` for symbolic
/// links; the `total N` header; and the DOS/IIS shape `MM-DD-YY  HH:MMAM  <DIR>|size  name`.
pub fn parse_list_line(line: &[u8]) -> ListLine {
    if let Some(total) = parse_total_line(line) {
        return ListLine::Total(total);
    }
    if let Some(entry) = parse_unix_line(line).or_else(|| parse_dos_line(line)) {
        return ListLine::Entry(entry);
    }
    ListLine::Unparsed(line.to_vec())
}

/// An owner or group that parses back as the same single column.
fn column_is_valid(column: &[u8]) -> bool {
    !column.is_empty()
        && column.iter().all(|&byte| byte > b' ' && byte != 0x7f)
        && !column.ends_with(b",")
}

impl ListEntry {
    /// Appends the canonical `ls -l` line a server sends, without its CRLF, in vsftpd's fixed
    /// widths: `-rw-r--r--    1 ftp      ftp          1234 Nov 25 13:37 name`.
    ///
    /// A missing link count is written as 1 and a missing owner or group as `ftp` (as vsftpd's
    /// `hide_ids` does). Device numbers replace the size when present. A
    /// [`ListTime::DateTime`] is written in the year form, losing its time of day. Refuses
    /// (writing nothing) anything that would not parse back as the same entry: an invalid mode,
    /// an owner or group with a space, a control character or a final `,`, an out-of-range time,
    /// an empty name, CR or LF in the name or target, ` -> ` in a symbolic link's name, and a
    /// target on anything but a symbolic link.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), ListingError> {
        let invalid = |field| Err(ListingError::InvalidListField { field });
        let has_line_break = |bytes: &[u8]| bytes.iter().any(|&b| b == b'\r' || b == b'\n');
        if let ListEntryKind::Other(letter) = self.kind {
            if !letter.is_ascii_alphabetic() || letter == b'd' || letter == b'l' {
                return invalid("kind");
            }
        }
        if !mode_bits_are_valid(&self.permissions) {
            return invalid("permissions");
        }
        let owner = self.owner.as_deref().unwrap_or(b"ftp");
        if !column_is_valid(owner) {
            return invalid("owner");
        }
        let group = self.group.as_deref().unwrap_or(b"ftp");
        if !column_is_valid(group) {
            return invalid("group");
        }
        let (ListTime::Recent { month, day, .. }
        | ListTime::Dated { month, day, .. }
        | ListTime::DateTime { month, day, .. }) = self.time;
        let Some(month_name) = MONTH_NAMES.get(usize::from(month).wrapping_sub(1)) else {
            return invalid("time");
        };
        if !(1..=31).contains(&day) {
            return invalid("time");
        }
        // `ls` right-aligns the year in the five columns of `HH:MM`.
        let clock_or_year = match self.time {
            ListTime::Recent { hour, minute, .. } if hour <= 23 && minute <= 59 => {
                format!("{hour:02}:{minute:02}")
            }
            ListTime::Dated { year, .. } | ListTime::DateTime { year, .. } if year <= 9999 => {
                format!(" {year:04}")
            }
            _ => return invalid("time"),
        };
        if self.name.is_empty() || has_line_break(&self.name) {
            return invalid("name");
        }
        if self.kind == ListEntryKind::Symlink && !symlink_name_is_unambiguous(&self.name) {
            return invalid("name");
        }
        match &self.link_target {
            Some(target) if self.kind != ListEntryKind::Symlink || has_line_break(target) => {
                return invalid("link_target");
            }
            _ => {}
        }

        let size = match self.device {
            Some(DeviceNumbers { major, minor }) => format!("{major}, {minor}"),
            None => format!("{}", self.size),
        };
        out.push(self.kind.type_char());
        out.extend_from_slice(&self.permissions);
        out.extend_from_slice(format!(" {:>4} ", self.links.unwrap_or(1)).as_bytes());
        push_padded(out, owner, 8);
        out.push(b' ');
        push_padded(out, group, 8);
        out.extend_from_slice(format!(" {size:>8} ").as_bytes());
        out.extend_from_slice(*month_name);
        out.extend_from_slice(format!(" {day:>2} {clock_or_year} ").as_bytes());
        out.extend_from_slice(&self.name);
        if let Some(target) = &self.link_target {
            out.extend_from_slice(SYMLINK_ARROW);
            out.extend_from_slice(target);
        }
        Ok(())
    }
}

/// Whether `name -> ` splits back at the arrow after `name`: the name holds no ` -> ` and does
/// not end with ` ->` (which would form an earlier arrow with the separator's space).
fn symlink_name_is_unambiguous(name: &[u8]) -> bool {
    !name.windows(4).any(|window| window == SYMLINK_ARROW) && !name.ends_with(b" ->")
}

/// Appends `column` padded with spaces on the right to `width` bytes.
fn push_padded(out: &mut Vec<u8>, column: &[u8], width: usize) {
    out.extend_from_slice(column);
    out.resize(out.len() + width.saturating_sub(column.len()), b' ');
}

// ---- line splitter -----------------------------------------------------------------------------

/// Cuts listing data arriving in chunks into lines, with a bounded line length.
///
/// The framing is [`LineFramer`]'s (the control channel's): lines end with LF and one CR
/// before the LF is removed, so CRLF and bare LF both work; a line longer than `max_line_len`
/// yields one [`ListingError::LineTooLong`] in its place and is skipped up to its LF. What this
/// adds for data connections is [`finish`](Self::finish): the end of the stream also ends the
/// last line. Drain [`next_line`](Self::next_line) after each [`push`](Self::push): the
/// framer holds the pushed bytes until they are taken.
///
/// Any chunking of the same bytes gives the same sequence of lines and errors.
#[derive(Debug, Clone)]
pub struct ListingLines {
    framer: LineFramer,
    /// Set by `finish`: once the framed lines are taken, the unterminated rest is the last line.
    finished: bool,
}

impl Default for ListingLines {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_LISTING_LINE_LEN)
    }
}

impl ListingLines {
    /// A splitter accepting lines of at most `max_line_len` bytes (excluding the line ending;
    /// values below [`MIN_MAX_LINE_LEN`](super::line::MIN_MAX_LINE_LEN) are raised to it).
    pub fn new(max_line_len: usize) -> Self {
        Self {
            framer: LineFramer::new(max_line_len),
            finished: false,
        }
    }

    /// The effective longest line.
    pub fn max_line_len(&self) -> usize {
        self.framer.max_line_len()
    }

    /// Feeds bytes read from the data connection.
    pub fn push(&mut self, data: &[u8]) {
        self.framer.push(data);
    }

    /// Marks the end of the data: a final line without a line ending becomes available from
    /// [`ListingLines::next_line`] (one trailing CR is removed from it), after the lines already
    /// framed. The splitter can then be reused for new data.
    pub fn finish(&mut self) {
        self.finished = true;
    }

    /// The next complete line (without its ending) or error, if any.
    pub fn next_line(&mut self) -> Option<Result<Vec<u8>, ListingError>> {
        match self.framer.next_line() {
            Some(Ok(line)) => Some(Ok(line.to_vec())),
            Some(Err(too_long)) => Some(Err(ListingError::LineTooLong {
                limit: too_long.max_line_len(),
            })),
            None if self.finished => {
                self.finished = false;
                // Every complete line was taken, so what is buffered is the unterminated rest
                // (nothing while the tail of an over-long line was being dropped).
                let mut rest = self.framer.take_buffered();
                if rest.is_empty() {
                    return None;
                }
                if let [content @ .., b'\r'] = rest.as_slice() {
                    rest.truncate(content.len());
                }
                Some(Ok(rest))
            }
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;
    use alloc::vec;
    use proptest::prelude::*;

    use crate::codec::line::MIN_MAX_LINE_LEN;

    // ---- time-val ---------------------------------------------------------------------------

    // spec: X01
    #[test]
    fn time_val_parses_and_encodes_exactly() {
        let time = FtpTime::parse(b"20261125120000").unwrap();
        assert_eq!(
            time,
            FtpTime {
                year: 2026,
                month: 11,
                day: 25,
                hour: 12,
                minute: 0,
                second: 0,
                nanos: 0,
                fraction_digits: 0,
            }
        );
        assert_eq!(time.to_string(), "20261125120000");
        assert_eq!(time.to_unix_seconds(), 1_795_608_000);

        let fractional = FtpTime::parse(b"19990929003355.5").unwrap();
        assert_eq!(fractional.nanos, 500_000_000);
        assert_eq!(fractional.fraction_digits, 1);
        // No more precision than the source had.
        assert_eq!(fractional.to_string(), "19990929003355.5");

        let precise = FtpTime::parse(b"20000229235959.000123").unwrap();
        assert_eq!(precise.nanos, 123_000);
        assert_eq!(precise.to_string(), "20000229235959.000123");
        assert_eq!(precise.to_unix_seconds(), 951_868_799);

        let too_precise = FtpTime::parse(b"20000229235959.1234567891234").unwrap();
        assert_eq!(too_precise.nanos, 123_456_789);
        assert_eq!(too_precise.to_string(), "20000229235959.123456789");

        let mut out = Vec::new();
        time.encode(&mut out);
        assert_eq!(out, b"20261125120000");
    }

    // spec: X01
    #[test]
    fn time_val_limits() {
        assert_eq!(
            FtpTime::parse(b"10000101000000").unwrap().to_unix_seconds(),
            -30_610_224_000
        );
        assert_eq!(
            FtpTime::parse(b"99991231235959").unwrap().to_unix_seconds(),
            253_402_300_799
        );
        assert_eq!(
            FtpTime::parse(b"19700101000000").unwrap().to_unix_seconds(),
            0
        );
        // A leap second is accepted and counts as the next minute's :00.
        let leap = FtpTime::parse(b"20161231235960").unwrap();
        assert_eq!(leap.second, 60);
        assert_eq!(leap.to_unix_seconds(), 1_483_228_800);
    }

    // spec: X01
    #[test]
    fn time_val_rejects_malformed_text() {
        let cases: &[(&[u8], TimeValError)] = &[
            (b"", TimeValError::WrongLength),
            (b"2026112512000", TimeValError::WrongLength),
            (b"202611251200000", TimeValError::WrongLength),
            (b"20261125120000.", TimeValError::EmptyFraction),
            (b"20261125120000.5.", TimeValError::NotDigit),
            (b"20261125120000.x", TimeValError::NotDigit),
            (b"2026-11-25 12:00", TimeValError::NotDigit),
            (b" 20261125120000", TimeValError::NotDigit),
            (b"+0261125120000", TimeValError::NotDigit),
            (b"09991125120000", TimeValError::OutOfRange),
            (b"20261325120000", TimeValError::OutOfRange),
            (b"20260025120000", TimeValError::OutOfRange),
            (b"20261100120000", TimeValError::OutOfRange),
            (b"20261131120000", TimeValError::OutOfRange),
            (b"20250229120000", TimeValError::OutOfRange),
            (b"19000229120000", TimeValError::OutOfRange),
            (b"20261125240000", TimeValError::OutOfRange),
            (b"20261125126000", TimeValError::OutOfRange),
            (b"20261125120061", TimeValError::OutOfRange),
        ];
        for (text, error) in cases {
            assert_eq!(
                FtpTime::parse(text),
                Err(*error),
                "{}",
                String::from_utf8_lossy(text)
            );
        }
        assert!(FtpTime::parse(b"20240229120000").is_ok());
        assert!(FtpTime::parse(b"20000229120000").is_ok());
    }

    // ---- MLSx ---------------------------------------------------------------------------------

    fn fact(name: &str, value: &str) -> Fact {
        Fact {
            name: name.as_bytes().to_vec(),
            value: value.as_bytes().to_vec(),
        }
    }

    // spec: X07
    // spec: X08
    #[test]
    fn mlsd_pyftpdlib_line() {
        let entry =
            parse_mlsx_entry(b"type=file;size=1234;perm=r;modify=20261125120000;unique=8012; name")
                .unwrap();
        assert_eq!(entry.name, b"name");
        assert_eq!(entry.facts.len(), 5);
        assert_eq!(entry.facts[0], fact("type", "file"));
        assert_eq!(entry.kind(), Some(EntryKind::File));
        assert_eq!(entry.size(), Some(1234));
        assert_eq!(entry.perm(), Some(Permissions::READ));
        assert_eq!(
            entry.modify(),
            Some(FtpTime::parse(b"20261125120000").unwrap())
        );
        assert_eq!(entry.create(), None);
        assert_eq!(entry.unique(), Some(&b"8012"[..]));
        assert_eq!(entry.unix_mode(), None);
    }

    // spec: X07
    // spec: X08
    #[test]
    fn mlsd_proftpd_lines_with_unix_facts() {
        let entry = parse_mlsx_entry(
            b"modify=20261125120000;perm=adfrw;size=1234;type=file;unique=FD00U12345;\
              UNIX.group=1000;UNIX.groupname=users;UNIX.mode=0644;UNIX.owner=1000;\
              UNIX.ownername=alice; file name with  spaces.txt",
        )
        .unwrap();
        assert_eq!(entry.name, b"file name with  spaces.txt");
        assert_eq!(entry.unix_mode(), Some(0o644));
        assert_eq!(entry.fact(b"unix.OWNERNAME"), Some(&b"alice"[..]));
        let perm = entry.perm().unwrap();
        for flag in [
            Permissions::APPEND,
            Permissions::DELETE,
            Permissions::RENAME,
            Permissions::READ,
            Permissions::WRITE,
        ] {
            assert!(perm.contains(flag));
        }
        assert!(!perm.contains(Permissions::ENTER));
        assert_eq!(entry.unique(), Some(&b"FD00U12345"[..]));

        let cdir = parse_mlsx_entry(b"type=cdir;modify=20261125120000;perm=flcdmpe; .").unwrap();
        assert_eq!(cdir.kind(), Some(EntryKind::Cdir));
        assert!(cdir.kind().unwrap().is_dir());
        assert_eq!(cdir.name, b".");
        let pdir = parse_mlsx_entry(b"type=pdir;perm=el; ..").unwrap();
        assert_eq!(pdir.kind(), Some(EntryKind::Pdir));

        let link = parse_mlsx_entry(b"type=OS.unix=slink:/target;UNIX.mode=0777; link").unwrap();
        assert_eq!(
            link.kind(),
            Some(EntryKind::OsSpecific {
                os: b"unix".to_vec(),
                kind: b"slink:/target".to_vec(),
            })
        );
        assert_eq!(link.fact(b"type"), Some(&b"OS.unix=slink:/target"[..]));
        assert_eq!(link.unix_mode(), Some(0o777));
    }

    // spec: X08
    #[test]
    fn mlsd_fact_names_and_type_values_are_case_insensitive() {
        let entry = parse_mlsx_entry(
            b"Type=DIR;Sizd=4096;Modify=19981107085215;Perm=EL;UNIX.mode=0755; /tmp",
        )
        .unwrap();
        assert_eq!(entry.kind(), Some(EntryKind::Dir));
        assert_eq!(entry.perm(), Some(Permissions::ENTER | Permissions::LIST));
        assert_eq!(entry.modify().unwrap().year, 1998);
        assert_eq!(entry.unix_mode(), Some(0o755));
        // Names are kept exactly as given.
        assert_eq!(entry.facts[0].name, b"Type");
        assert_eq!(
            parse_mlsx_entry(b"type=weird; x").unwrap().kind(),
            Some(EntryKind::Other(b"weird".to_vec()))
        );
        // Unknown perm letters are ignored.
        assert_eq!(
            Permissions::from_letters(b"rzW"),
            Permissions::READ | Permissions::WRITE
        );
    }

    // spec: X07
    #[test]
    fn mlsd_line_without_facts_starts_with_space() {
        let entry = parse_mlsx_entry(b" just a name").unwrap();
        assert!(entry.facts.is_empty());
        assert_eq!(entry.name, b"just a name");
        assert_eq!(entry.kind(), None);
        assert_eq!(entry.size(), None);
    }

    // spec: X06
    #[test]
    fn mlst_entry_line_has_one_leading_space() {
        let entry = parse_mlst_entry(b" Type=dir;Modify=19981107085215;Perm=el; /tmp").unwrap();
        assert_eq!(entry.name, b"/tmp");
        assert_eq!(entry.kind(), Some(EntryKind::Dir));
        // No facts: two spaces.
        let bare = parse_mlst_entry(b"  /tmp").unwrap();
        assert!(bare.facts.is_empty());
        assert_eq!(bare.name, b"/tmp");
        assert_eq!(
            parse_mlst_entry(b"Type=dir; /tmp"),
            Err(ListingError::MissingLeadingSpace)
        );
    }

    // spec: X07
    // spec: X08
    #[test]
    fn mlsx_rejects_malformed_entries() {
        let cases: &[(&[u8], ListingError)] = &[
            (b"", ListingError::MissingFactsSeparator),
            (b"type=file;size=1", ListingError::MissingFactsSeparator),
            (b"type=file;", ListingError::MissingFactsSeparator),
            (b"type=file; ", ListingError::EmptyPathname),
            (b"type=file;size=1 name", ListingError::UnterminatedFacts),
            (b"type=file;size; name", ListingError::MalformedFact),
            (b"type=file;=1; name", ListingError::MalformedFact),
            (b"type=file;;size=1; name", ListingError::MalformedFact),
            (b"; name", ListingError::MalformedFact),
            (b"type=file; name\r", ListingError::LineBreakInEntry),
            (b"type=file; na\nme", ListingError::LineBreakInEntry),
        ];
        for (line, error) in cases {
            assert_eq!(
                parse_mlsx_entry(line),
                Err(*error),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    // spec: X08
    #[test]
    fn mlsx_accessors_tolerate_bad_values() {
        let entry =
            parse_mlsx_entry(b"size=12a;modify=2026;UNIX.mode=0689;perm=;size=5; f").unwrap();
        assert_eq!(entry.size(), None, "the first size fact is used");
        assert_eq!(entry.modify(), None);
        assert_eq!(entry.unix_mode(), None);
        assert_eq!(entry.perm(), Some(Permissions::empty()));
        let huge =
            parse_mlsx_entry(b"size=99999999999999999999999;UNIX.mode=77777777777777; f").unwrap();
        assert_eq!(huge.size(), None);
        assert_eq!(huge.unix_mode(), None);
    }

    // spec: X07
    // spec: X08
    #[test]
    fn mlsx_encode_writes_and_refuses() {
        let entry = MlsxEntry {
            facts: vec![
                fact("type", "OS.unix=slink:/a=b"),
                fact("size", "0"),
                fact("perm", ""),
            ],
            name: b"a name".to_vec(),
        };
        let mut out = Vec::new();
        entry.encode(&mut out).unwrap();
        assert_eq!(out, b"type=OS.unix=slink:/a=b;size=0;perm=; a name");

        let no_facts = MlsxEntry {
            facts: Vec::new(),
            name: b"x".to_vec(),
        };
        out.clear();
        no_facts.encode(&mut out).unwrap();
        assert_eq!(out, b" x");

        let refused = [
            (
                MlsxEntry {
                    facts: Vec::new(),
                    name: Vec::new(),
                },
                ListingError::EmptyPathname,
            ),
            (
                MlsxEntry {
                    facts: Vec::new(),
                    name: b"a\r\nb".to_vec(),
                },
                ListingError::LineBreakInEntry,
            ),
            (
                MlsxEntry {
                    facts: vec![fact("", "x")],
                    name: b"n".to_vec(),
                },
                ListingError::InvalidFactName,
            ),
            (
                MlsxEntry {
                    facts: vec![fact("a b", "x")],
                    name: b"n".to_vec(),
                },
                ListingError::InvalidFactName,
            ),
            (
                MlsxEntry {
                    facts: vec![fact("a=b", "x")],
                    name: b"n".to_vec(),
                },
                ListingError::InvalidFactName,
            ),
            (
                MlsxEntry {
                    facts: vec![fact("a;", "x")],
                    name: b"n".to_vec(),
                },
                ListingError::InvalidFactName,
            ),
            (
                MlsxEntry {
                    facts: vec![fact("a", "x y")],
                    name: b"n".to_vec(),
                },
                ListingError::InvalidFactValue,
            ),
            (
                MlsxEntry {
                    facts: vec![fact("a", "x;y")],
                    name: b"n".to_vec(),
                },
                ListingError::InvalidFactValue,
            ),
            (
                MlsxEntry {
                    facts: vec![fact("a", "x\ty")],
                    name: b"n".to_vec(),
                },
                ListingError::InvalidFactValue,
            ),
        ];
        for (entry, error) in refused {
            let mut out = b"keep".to_vec();
            assert_eq!(entry.encode(&mut out), Err(error));
            assert_eq!(out, b"keep", "nothing is written on refusal");
        }
    }

    #[test]
    fn permissions_encode_in_letter_order() {
        let mut out = Vec::new();
        Permissions::from_letters(b"wrplmfedca").encode(&mut out);
        assert_eq!(out, b"acdeflmprw");
        assert_eq!(Permissions::from_bits(0xffff).bits(), 0x3ff);
    }

    // spec: X09
    #[test]
    fn mlst_feature_fact_lists() {
        let facts =
            parse_mlst_feature_facts(b"modify*;perm*;size*;type*;unique*;UNIX.mode;").unwrap();
        assert_eq!(facts.len(), 6);
        assert_eq!(
            facts[0],
            FactSupport {
                name: b"modify".to_vec(),
                enabled: true
            }
        );
        assert!(!facts[5].enabled);
        let mut out = Vec::new();
        encode_mlst_feature_facts(&facts, &mut out).unwrap();
        assert_eq!(out, b"modify*;perm*;size*;type*;unique*;UNIX.mode;");
        assert_eq!(parse_mlst_feature_facts(b"").unwrap(), Vec::new());
        assert_eq!(parse_mlst_feature_facts(b"type*;size").unwrap().len(), 2);
        for bad in [&b"type*;;size;"[..], b"ty pe;", b"*;", b"ty*pe;"] {
            assert_eq!(
                parse_mlst_feature_facts(bad),
                Err(ListingError::MalformedFactList)
            );
        }
    }

    // spec: X10
    #[test]
    fn opts_mlst_fact_selection() {
        assert_eq!(
            parse_opts_mlst_facts(b"type;size;modify;").unwrap(),
            vec![b"type".to_vec(), b"size".to_vec(), b"modify".to_vec()]
        );
        assert_eq!(parse_opts_mlst_facts(b"").unwrap(), Vec::<Vec<u8>>::new());
        for bad in [&b"type; size;"[..], b"type;size", b";", b"type;;"] {
            assert_eq!(
                parse_opts_mlst_facts(bad),
                Err(ListingError::MalformedFactList),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let mut entry = parse_mlsx_entry(b"Type=file;Size=1;Modify=20261125120000; f").unwrap();
        entry.retain_facts(&parse_opts_mlst_facts(b"size;TYPE;").unwrap());
        assert_eq!(entry.facts, vec![fact("Type", "file"), fact("Size", "1")]);
    }

    // ---- LIST ---------------------------------------------------------------------------------

    fn entry(line: &[u8]) -> ListEntry {
        match parse_list_line(line) {
            ListLine::Entry(entry) => entry,
            other => panic!("{}: {other:?}", String::from_utf8_lossy(line)),
        }
    }

    fn recent(month: u8, day: u8, hour: u8, minute: u8) -> ListTime {
        ListTime::Recent {
            month,
            day,
            hour,
            minute,
        }
    }

    #[test]
    fn list_vsftpd_lines() {
        let file = entry(b"-rw-r--r--    1 ftp      ftp          1234 Nov 25 13:37 name");
        assert_eq!(
            file,
            ListEntry {
                kind: ListEntryKind::File,
                permissions: b"rw-r--r--".to_vec(),
                links: Some(1),
                owner: Some(b"ftp".to_vec()),
                group: Some(b"ftp".to_vec()),
                size: 1234,
                device: None,
                time: recent(11, 25, 13, 37),
                name: b"name".to_vec(),
                link_target: None,
            }
        );
        let dir = entry(b"drwxr-xr-x    2 ftp      ftp          4096 Jan 01  2024 pub");
        assert_eq!(dir.kind, ListEntryKind::Directory);
        assert_eq!(
            dir.time,
            ListTime::Dated {
                year: 2024,
                month: 1,
                day: 1
            }
        );
        assert_eq!(dir.name, b"pub");
        let link =
            entry(b"lrwxrwxrwx    1 ftp      ftp             7 Nov 25 13:37 link -> a target");
        assert_eq!(link.kind, ListEntryKind::Symlink);
        assert_eq!(link.name, b"link");
        assert_eq!(link.link_target.as_deref(), Some(&b"a target"[..]));
    }

    #[test]
    fn list_proftpd_pyftpdlib_busybox_lines() {
        let proftpd =
            entry(b"drwxr-xr-x   3 0        0            4096 Jan  5 09:03 dir with spaces");
        assert_eq!(proftpd.owner.as_deref(), Some(&b"0"[..]));
        assert_eq!(proftpd.group.as_deref(), Some(&b"0"[..]));
        assert_eq!(proftpd.links, Some(3));
        assert_eq!(proftpd.time, recent(1, 5, 9, 3));
        assert_eq!(proftpd.name, b"dir with spaces");

        let pyftpdlib = entry(b"-rw-r--r--   1 owner    group        1234 Nov 25 12:00 file.txt");
        assert_eq!(pyftpdlib.owner.as_deref(), Some(&b"owner"[..]));
        assert_eq!(pyftpdlib.group.as_deref(), Some(&b"group"[..]));
        assert_eq!(pyftpdlib.size, 1234);
        assert_eq!(pyftpdlib.name, b"file.txt");

        let busybox = entry(b"-rw-r--r--    1 root     root      1048576 Dec 31  1999 old.bin");
        assert_eq!(busybox.size, 1_048_576);
        assert_eq!(
            busybox.time,
            ListTime::Dated {
                year: 1999,
                month: 12,
                day: 31
            }
        );
    }

    #[test]
    fn list_column_variants() {
        let no_group = entry(b"-rw-r--r--  1 alice 1234 Nov 25 12:00 file");
        assert_eq!(no_group.links, Some(1));
        assert_eq!(no_group.owner.as_deref(), Some(&b"alice"[..]));
        assert_eq!(no_group.group, None);

        let no_links = entry(b"-rw-r--r-- ftp ftp     1234 Nov 25 12:00 file");
        assert_eq!(no_links.links, None);
        assert_eq!(no_links.owner.as_deref(), Some(&b"ftp"[..]));
        assert_eq!(no_links.group.as_deref(), Some(&b"ftp"[..]));

        let links_only = entry(b"-rw-r--r-- 1 1234 Nov 25 12:00 file");
        assert_eq!(links_only.links, Some(1));
        assert_eq!(links_only.owner, None);

        let bare = entry(b"-rw-r--r-- 1234 Nov 25 12:00 file");
        assert_eq!((bare.links, bare.size), (None, 1234));

        // An owner named like a month does not derail the usual shape.
        let jan = entry(b"-rw-r--r-- 1 jan 25 2025 Nov 25 12:00 file");
        assert_eq!(jan.owner.as_deref(), Some(&b"jan"[..]));
        assert_eq!(jan.group.as_deref(), Some(&b"25"[..]));
        assert_eq!(jan.size, 2025);
        assert_eq!(jan.time, recent(11, 25, 12, 0));

        // A file name that looks like a listing does not confuse the columns.
        let tricky = entry(b"-rw-r--r-- 1 a b 10 Nov 25 12:00 1234 Dec 25 10:00 backup");
        assert_eq!(tricky.size, 10);
        assert_eq!(tricky.name, b"1234 Dec 25 10:00 backup");
    }

    #[test]
    fn list_markers_devices_names() {
        let markers: [(&[u8], &[u8]); 3] = [
            (
                b"drwxr-xr-x+  2 user group 4096 Nov 25 12:00 acl",
                b"rwxr-xr-x+",
            ),
            (
                b"-rw-r--r--@  1 user staff 1234 Nov 25 12:00 mac",
                b"rw-r--r--@",
            ),
            (
                b"-rw-r--r--.  1 root root  1234 Nov 25 12:00 selinux",
                b"rw-r--r--.",
            ),
        ];
        for (line, marker) in markers {
            assert_eq!(entry(line).permissions, marker);
        }

        let null = entry(b"crw-rw-rw-    1 0        0          1,   3 Nov 25 12:00 null");
        assert_eq!(null.kind, ListEntryKind::Other(b'c'));
        assert_eq!(null.device, Some(DeviceNumbers { major: 1, minor: 3 }));
        assert_eq!(null.size, 0);
        assert_eq!(null.group.as_deref(), Some(&b"0"[..]));
        let sda = entry(b"brw-rw----  1 root disk 8,0 Nov 25 12:00 sda");
        assert_eq!(sda.device, Some(DeviceNumbers { major: 8, minor: 0 }));
        assert_eq!(sda.name, b"sda");

        // Everything after the one separating space is the name.
        assert_eq!(
            entry(b"-rw-r--r-- 1 a b 1 Nov 25 12:00   spaced  ").name,
            b"  spaced  "
        );
        // ` -> ` is part of the name of anything but a symlink.
        let arrow = entry(b"-rw-r--r-- 1 a b 1 Nov 25 12:00 a -> b");
        assert_eq!(
            (arrow.name.as_slice(), arrow.link_target),
            (&b"a -> b"[..], None)
        );
        let sticky = entry(b"drwxrwxrwt   10 root root 4096 nov  5  9:05 tmp");
        assert_eq!(sticky.permissions, b"rwxrwxrwt");
        assert_eq!(sticky.time, recent(11, 5, 9, 5));
    }

    #[test]
    fn list_total_and_unparsed_lines() {
        assert_eq!(parse_list_line(b"total 48"), ListLine::Total(48));
        assert_eq!(parse_list_line(b"total  0"), ListLine::Total(0));
        for line in [
            &b""[..],
            b"total",
            b"total 12K",
            b"random text",
            b"-rw-r--r-- 1 a b 1.2K Nov 25 12:00 human",
            b"-rw-r--r-- 1 a b 12 2025-11-25 12:00 long-iso",
            b"-rw-r--r-- 1 a b 12 Nov 25 12:00",
            b"-rw-r--r-- 1 a b 12 Nov 32 12:00 bad-day",
            b"-rw-r--r-- 1 a b 12 Nov 25 24:00 bad-hour",
            b"-rw-r--r-- 1 a b 12 Nov 25 12:00\tf",
            b"-rw-r--r-- x a b 12 Nov 25 12:00 links-not-numeric",
            b"-rw-r--r-- 1 a b c 12 Nov 25 12:00 four-columns",
            b"-rwxr-xr-xx 1 a b 12 Nov 25 12:00 bad-mode",
            b"?rw-r--r-- 1 a b 12 Nov 25 12:00 bad-type",
            b"-rw-r--r-- 1 a b 99999999999999999999999 Nov 25 12:00 huge",
            b"11-25-25  01:37PM 1234",
            b"13-25-25  01:37PM 1234 f",
            b"11-25-25  13:37PM 1234 f",
        ] {
            assert_eq!(
                parse_list_line(line),
                ListLine::Unparsed(line.to_vec()),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn list_iis_dos_lines() {
        let dir = entry(b"11-25-25  01:37PM       <DIR>          dir name");
        assert_eq!(dir.kind, ListEntryKind::Directory);
        assert_eq!(dir.name, b"dir name");
        assert_eq!(
            dir.time,
            ListTime::DateTime {
                year: 2025,
                month: 11,
                day: 25,
                hour: 13,
                minute: 37
            }
        );
        let file = entry(b"02-14-99  12:05AM                 1234 file.txt");
        assert_eq!(file.kind, ListEntryKind::File);
        assert_eq!(file.size, 1234);
        assert_eq!(file.name, b"file.txt");
        assert_eq!(file.owner, None);
        assert!(file.permissions.is_empty());
        assert_eq!(
            file.time,
            ListTime::DateTime {
                year: 1999,
                month: 2,
                day: 14,
                hour: 0,
                minute: 5
            }
        );
        let four_digit = entry(b"02-14-2024  23:59  2048  two spaces");
        assert_eq!(four_digit.name, b" two spaces");
        assert_eq!(
            four_digit.time,
            ListTime::DateTime {
                year: 2024,
                month: 2,
                day: 14,
                hour: 23,
                minute: 59
            }
        );
    }

    #[test]
    fn list_encode_matches_vsftpd_layout() {
        let mut out = Vec::new();
        entry(b"-rw-r--r-- 1 ftp ftp 1234 Nov 25 13:37 name")
            .encode(&mut out)
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "-rw-r--r--    1 ftp      ftp          1234 Nov 25 13:37 name"
        );

        let mut out = Vec::new();
        let mut dated = entry(b"lrwxrwxrwx 1 ftp ftp 7 Jan 5 2024 link -> target");
        dated.owner = None;
        dated.links = None;
        dated.encode(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "lrwxrwxrwx    1 ftp      ftp             7 Jan  5  2024 link -> target"
        );

        let mut out = Vec::new();
        entry(b"crw-rw-rw- 1 root root 1, 3 Nov 25 12:00 null")
            .encode(&mut out)
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "crw-rw-rw-    1 root     root         1, 3 Nov 25 12:00 null"
        );
    }

    #[test]
    fn list_encode_refuses_what_would_not_parse_back() {
        let base = entry(b"-rw-r--r-- 1 ftp ftp 1 Nov 25 13:37 name");
        let link = entry(b"lrwxrwxrwx 1 ftp ftp 1 Nov 25 13:37 l -> t");
        let cases: Vec<(ListEntry, &str)> = vec![
            (
                ListEntry {
                    kind: ListEntryKind::Other(b'd'),
                    ..base.clone()
                },
                "kind",
            ),
            (
                ListEntry {
                    kind: ListEntryKind::Other(b'1'),
                    ..base.clone()
                },
                "kind",
            ),
            (
                ListEntry {
                    permissions: b"rw-".to_vec(),
                    ..base.clone()
                },
                "permissions",
            ),
            (
                ListEntry {
                    owner: Some(b"a b".to_vec()),
                    ..base.clone()
                },
                "owner",
            ),
            (
                ListEntry {
                    owner: Some(Vec::new()),
                    ..base.clone()
                },
                "owner",
            ),
            (
                ListEntry {
                    group: Some(b"12,".to_vec()),
                    ..base.clone()
                },
                "group",
            ),
            (
                ListEntry {
                    time: recent(13, 1, 0, 0),
                    ..base.clone()
                },
                "time",
            ),
            (
                ListEntry {
                    time: recent(0, 1, 0, 0),
                    ..base.clone()
                },
                "time",
            ),
            (
                ListEntry {
                    time: recent(1, 32, 0, 0),
                    ..base.clone()
                },
                "time",
            ),
            (
                ListEntry {
                    time: recent(1, 1, 24, 0),
                    ..base.clone()
                },
                "time",
            ),
            (
                ListEntry {
                    name: Vec::new(),
                    ..base.clone()
                },
                "name",
            ),
            (
                ListEntry {
                    name: b"a\nb".to_vec(),
                    ..base.clone()
                },
                "name",
            ),
            (
                ListEntry {
                    link_target: Some(b"t".to_vec()),
                    ..base.clone()
                },
                "link_target",
            ),
            (
                ListEntry {
                    name: b"a -> b".to_vec(),
                    ..link.clone()
                },
                "name",
            ),
            (
                ListEntry {
                    link_target: Some(b"t\r".to_vec()),
                    ..link.clone()
                },
                "link_target",
            ),
        ];
        for (entry, field) in cases {
            let mut out = Vec::new();
            assert_eq!(
                entry.encode(&mut out),
                Err(ListingError::InvalidListField { field }),
                "{entry:?}"
            );
            assert!(out.is_empty());
        }
    }

    // ---- splitter -----------------------------------------------------------------------------

    fn drain(lines: &mut ListingLines) -> Vec<Result<Vec<u8>, ListingError>> {
        core::iter::from_fn(|| lines.next_line()).collect()
    }

    #[test]
    fn splitter_handles_crlf_lf_and_final_line() {
        let mut lines = ListingLines::default();
        lines.push(b"one\r\ntwo\nthr");
        assert_eq!(
            drain(&mut lines),
            vec![Ok(b"one".to_vec()), Ok(b"two".to_vec())]
        );
        lines.push(b"ee\r");
        assert_eq!(drain(&mut lines), Vec::new());
        lines.push(b"\n\nlast");
        assert_eq!(
            drain(&mut lines),
            vec![Ok(b"three".to_vec()), Ok(Vec::new())]
        );
        lines.finish();
        assert_eq!(drain(&mut lines), vec![Ok(b"last".to_vec())]);
        lines.finish();
        assert_eq!(drain(&mut lines), Vec::new());
    }

    #[test]
    fn splitter_bounds_line_length() {
        let mut lines = ListingLines::new(8);
        assert_eq!(lines.max_line_len(), 8);
        lines.push(b"12345678\r\n123456789\nok\n");
        assert_eq!(
            drain(&mut lines),
            vec![
                Ok(b"12345678".to_vec()),
                Err(ListingError::LineTooLong { limit: 8 }),
                Ok(b"ok".to_vec())
            ]
        );
        // An endless line is reported as soon as it passes the limit and its bytes are dropped.
        lines.push(b"abcdefghijkl");
        assert_eq!(
            drain(&mut lines),
            vec![Err(ListingError::LineTooLong { limit: 8 })]
        );
        for _ in 0..1000 {
            lines.push(&[b'x'; 1000]);
        }
        assert_eq!(lines.framer.buffered_len(), 0);
        assert_eq!(drain(&mut lines), Vec::new());
        lines.push(b"tail\r\nend");
        assert_eq!(drain(&mut lines), Vec::new());
        lines.finish();
        assert_eq!(drain(&mut lines), vec![Ok(b"end".to_vec())]);
    }

    /// The lines and errors a whole input must produce, computed without any chunking logic.
    fn reference_lines(data: &[u8], max: usize) -> Vec<Result<Vec<u8>, ListingError>> {
        let mut pieces: Vec<&[u8]> = data.split(|&byte| byte == b'\n').collect();
        let last = pieces.pop().unwrap_or_default();
        let mut result = Vec::new();
        let mut judge = |piece: &[u8]| {
            let content = piece.strip_suffix(b"\r").unwrap_or(piece);
            result.push(if content.len() > max {
                Err(ListingError::LineTooLong { limit: max })
            } else {
                Ok(content.to_vec())
            });
        };
        for piece in pieces {
            judge(piece);
        }
        if !last.is_empty() {
            judge(last);
        }
        result
    }

    // ---- proptests ----------------------------------------------------------------------------

    fn arb_time() -> impl Strategy<Value = FtpTime> {
        (
            1000_u16..=9999,
            1_u8..=12,
            1_u8..=31,
            0_u8..=23,
            0_u8..=59,
            0_u8..=60,
            0_u8..=9,
            0_u32..1_000_000_000,
        )
            .prop_map(|(year, month, day, hour, minute, second, digits, nanos)| {
                let day = day.min(days_in_month(i64::from(year), month));
                let scale = POWERS_OF_TEN[9 - usize::from(digits)];
                FtpTime {
                    year,
                    month,
                    day,
                    hour,
                    minute,
                    second,
                    nanos: if digits == 0 {
                        0
                    } else {
                        nanos / scale * scale
                    },
                    fraction_digits: digits,
                }
            })
    }

    // Generated from byte ranges rather than filtered, so no case is rejected.
    fn arb_fact_name() -> impl Strategy<Value = Vec<u8>> {
        let byte = prop_oneof![0x21_u8..=0x3a, Just(0x3c), 0x3e_u8..=0x7e, 0x80_u8..];
        proptest::collection::vec(byte, 1..12)
    }

    fn arb_fact_value() -> impl Strategy<Value = Vec<u8>> {
        let byte = prop_oneof![0x21_u8..=0x3a, 0x3c_u8..=0x7e, 0x80_u8..];
        proptest::collection::vec(byte, 0..16)
    }

    fn arb_name() -> impl Strategy<Value = Vec<u8>> {
        let byte = prop_oneof![0_u8..=9, 11_u8..=12, 14_u8..];
        proptest::collection::vec(byte, 1..24)
    }

    fn arb_column() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![
                b'a'..=b'z',
                b'0'..=b'9',
                Just(b'-'),
                Just(b','),
                Just(b'_'),
                0x80_u8..
            ],
            1..12,
        )
        .prop_filter("no final comma", |column| !column.ends_with(b","))
    }

    fn arb_list_entry() -> impl Strategy<Value = ListEntry> {
        let kind = prop_oneof![
            Just(ListEntryKind::File),
            Just(ListEntryKind::Directory),
            Just(ListEntryKind::Symlink),
            prop_oneof![Just(b'c'), Just(b'b'), Just(b'p'), Just(b's'), Just(b'D')]
                .prop_map(ListEntryKind::Other),
        ];
        let permissions = (
            proptest::collection::vec(proptest::sample::select(b"rwxsStTlL-?".to_vec()), 9),
            proptest::option::of(proptest::sample::select(b"+@.".to_vec())),
        )
            .prop_map(|(mut bits, marker)| {
                bits.extend(marker);
                bits
            });
        let time = prop_oneof![
            (1_u8..=12, 1_u8..=31, 0_u8..=23, 0_u8..=59).prop_map(|(month, day, hour, minute)| {
                ListTime::Recent {
                    month,
                    day,
                    hour,
                    minute,
                }
            }),
            (0_u16..=9999, 1_u8..=12, 1_u8..=31).prop_map(|(year, month, day)| ListTime::Dated {
                year,
                month,
                day
            }),
        ];
        let size_or_device = prop_oneof![
            any::<u64>().prop_map(|size| (size, None)),
            (any::<u32>(), any::<u32>())
                .prop_map(|(major, minor)| (0, Some(DeviceNumbers { major, minor }))),
        ];
        (
            kind,
            permissions,
            any::<u64>(),
            arb_column(),
            arb_column(),
            size_or_device,
            time,
            arb_name(),
            proptest::option::of(arb_name()),
        )
            .prop_filter_map(
                "symlink names must not contain ` -> `",
                |(kind, permissions, links, owner, group, (size, device), time, name, target)| {
                    let symlink = kind == ListEntryKind::Symlink;
                    if symlink && !symlink_name_is_unambiguous(&name) {
                        return None;
                    }
                    Some(ListEntry {
                        kind,
                        permissions,
                        links: Some(links),
                        owner: Some(owner),
                        group: Some(group),
                        size,
                        device,
                        time,
                        name,
                        link_target: if symlink { target } else { None },
                    })
                },
            )
    }

    const LIST_LIKE_FIELDS: [&[u8]; 14] = [
        b"-rw-r--r--",
        b"1",
        b"ftp",
        b"Nov",
        b"25",
        b"12:00",
        b"2024",
        b"1,",
        b"->",
        b"<DIR>",
        b"11-25-25",
        b"01:37PM",
        b"",
        b"total",
    ];

    proptest! {
        // spec: X01
        #[test]
        fn time_val_round_trips(time in arb_time()) {
            let text = time.to_string();
            prop_assert_eq!(FtpTime::parse(text.as_bytes()), Ok(time));
        }

        // spec: X01
        #[test]
        fn unix_seconds_round_trip(seconds in -30_610_224_000_i64..=253_402_300_799) {
            let time = FtpTime::from_unix_seconds(seconds).unwrap();
            prop_assert!(time.validate().is_ok());
            prop_assert_eq!(time.to_unix_seconds(), seconds);
            let reparsed = FtpTime::parse(time.to_string().as_bytes());
            prop_assert_eq!(reparsed, Ok(time));
        }

        #[test]
        fn unix_seconds_outside_time_val_years_are_refused(
            seconds in prop_oneof![i64::MIN / 2..-30_610_224_000, 253_402_300_800..i64::MAX / 2]
        ) {
            prop_assert_eq!(FtpTime::from_unix_seconds(seconds), None);
        }

        // spec: X07
        // spec: X08
        #[test]
        fn mlsx_entry_round_trips(
            facts in proptest::collection::vec((arb_fact_name(), arb_fact_value()), 0..6),
            name in arb_name(),
        ) {
            let entry = MlsxEntry {
                facts: facts.into_iter().map(|(name, value)| Fact { name, value }).collect(),
                name,
            };
            let mut line = Vec::new();
            entry.encode(&mut line).unwrap();
            prop_assert_eq!(parse_mlsx_entry(&line), Ok(entry.clone()));
            let mut mlst_line = vec![b' '];
            mlst_line.extend_from_slice(&line);
            prop_assert_eq!(parse_mlst_entry(&mlst_line), Ok(entry));
        }

        #[test]
        fn permissions_round_trip(bits in 0_u16..0x400) {
            let permissions = Permissions::from_bits(bits);
            let mut out = Vec::new();
            permissions.encode(&mut out);
            prop_assert_eq!(Permissions::from_letters(&out), permissions);
            prop_assert_eq!(Permissions::from_letters(&out.to_ascii_uppercase()), permissions);
        }

        #[test]
        fn list_entry_round_trips(entry in arb_list_entry()) {
            let mut line = Vec::new();
            entry.encode(&mut line).unwrap();
            prop_assert_eq!(parse_list_line(&line), ListLine::Entry(entry));
        }

        #[test]
        fn listing_parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = parse_mlsx_entry(&bytes);
            let _ = parse_mlst_entry(&bytes);
            let _ = parse_mlst_feature_facts(&bytes);
            let _ = parse_opts_mlst_facts(&bytes);
            let _ = FtpTime::parse(&bytes);
            if let ListLine::Unparsed(raw) = parse_list_line(&bytes) {
                prop_assert_eq!(raw, bytes);
            }
        }

        #[test]
        fn list_parser_never_panics_on_listing_like_lines(
            fields in proptest::collection::vec(
                proptest::sample::select(&LIST_LIKE_FIELDS[..]),
                0..12,
            )
        ) {
            let line = fields.join(&b' ');
            let _ = parse_list_line(&line);
        }

        #[test]
        fn splitter_is_split_invariant_and_matches_the_reference(
            data in proptest::collection::vec(
                prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'a'), Just(b' ')], 0..64),
            max in MIN_MAX_LINE_LEN..16,
            cuts in proptest::collection::vec(any::<proptest::sample::Index>(), 0..8),
        ) {
            let mut whole = ListingLines::new(max);
            whole.push(&data);
            whole.finish();
            let expected = drain(&mut whole);
            prop_assert_eq!(&expected, &reference_lines(&data, max));

            let mut positions: Vec<usize> =
                cuts.iter().map(|cut| cut.index(data.len() + 1)).collect();
            positions.sort_unstable();
            let mut chunked = ListingLines::new(max);
            let mut got = Vec::new();
            let mut start = 0;
            for end in positions.into_iter().chain([data.len()]) {
                chunked.push(&data[start..end]);
                got.extend(drain(&mut chunked));
                prop_assert!(chunked.framer.buffered_len() <= max + 1);
                start = end;
            }
            chunked.finish();
            got.extend(drain(&mut chunked));
            prop_assert_eq!(got, expected);
        }
    }
}
