//! Data-connection address codecs: `PORT` and `227` (RFC 959 §4.1.2, RFC 1123 §4.1.2.6) and
//! `EPRT`, `EPSV` and `229` (RFC 2428).
//!
//! The parsers are pure functions over bytes: the client role reads the text of `227` and `229`
//! replies, the server role reads the arguments of `PORT`, `EPRT` and `EPSV`. The encoders produce
//! the matching arguments and reply texts. None of them decides policy: refusing ports below 1024,
//! comparing an address with the control peer (bounce and port-theft defences) and ignoring the
//! address of a `227` reply belong to the sessions, which use [`canonical_ip`] and
//! [`is_same_host`] for the comparison.
//!
//! Decisions:
//! - A `227` text is scanned for the first run of comma-separated decimal numbers that has
//!   exactly six members (RFC 1123 §4.1.2.6: the shape is not standardised, so the client must
//!   scan). Shorter runs (`227`, `1 2`, a version number) are skipped. A run of seven or more is
//!   rejected as ambiguous: there is no honest way to choose which six of them are the address.
//!   Spaces after a comma are tolerated (`(127, 0, 0, 1, 4, 1)`), spaces before a comma are not.
//! - Fields of `PORT` and `227` accept 0–255 (RFC 959 says 1–255, a known bug; see the checklist's
//!   §10 "PORT field range"), and port 0 is refused.
//! - Numbers are read with saturating arithmetic, so an absurd run of digits is reported as out of
//!   range instead of overflowing. Leading zeros are accepted in decimal fields.
//! - `EPRT` addresses are parsed with the strict `core::net` text parsers: IPv4 must be four
//!   dotted decimal octets without leading zeros (which some stacks read as octal), IPv6 is the
//!   RFC 4291 text form without a zone index.
//! - An IPv4-mapped IPv6 address (`EPRT |2|::ffff:192.0.2.1|…|`) is returned as given, as
//!   [`SocketAddr::V6`]: the family the peer named is information a server may want to keep (for
//!   example to dial with the same family). A comparison with the control peer's address must go
//!   through [`canonical_ip`] / [`is_same_host`], which fold mapped addresses to IPv4.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// Why a data-connection address or argument was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    /// A `227` reply text holds no run of exactly six comma-separated numbers.
    #[error("no run of six comma-separated numbers in the 227 reply text")]
    NoPassiveAddress,
    /// A `227` reply text holds a run of seven or more comma-separated numbers.
    #[error("a run of {count} comma-separated numbers is ambiguous (expected exactly six)")]
    AmbiguousNumberRun {
        /// How many numbers the run had (saturating).
        count: usize,
    },
    /// A `PORT` argument does not have exactly six comma-separated fields.
    #[error("expected six comma-separated fields, found {found}")]
    WrongFieldCount {
        /// How many fields were found (at most seven are counted).
        found: usize,
    },
    /// A numeric field is empty or holds something other than ASCII digits.
    #[error("a numeric field is empty or not a decimal number")]
    InvalidNumber,
    /// A byte of a `PORT` argument or `227` reply is above 255.
    #[error("an address or port byte is above 255")]
    ByteOutOfRange,
    /// The port is 0 or above 65535.
    #[error("the port is 0 or above 65535")]
    PortOutOfRange,
    /// A `229` reply text has no `(`.
    #[error("no parenthesised part in the 229 reply text")]
    MissingParentheses,
    /// The delimiter of an extended address is not a printable ASCII character (33–126).
    #[error("the delimiter is not a printable ASCII character (33-126)")]
    InvalidDelimiter,
    /// The delimiters and fields of an extended address do not form `<d>…<d>…<d>…<d>`.
    #[error("malformed extended address: expected <d>field<d>field<d>field<d>")]
    MalformedExtendedAddress,
    /// A `229` reply names a network protocol or address; both fields must be empty.
    #[error("the first two fields of a 229 reply must be empty")]
    EpsvFieldsNotEmpty,
    /// The network address of an `EPRT` argument is not valid text for its protocol.
    #[error("the network address is not valid text for its protocol")]
    InvalidNetworkAddress,
    /// The network address of an `EPRT` argument belongs to the other protocol.
    #[error("the network address does not belong to the named network protocol")]
    AddressFamilyMismatch,
    /// The network protocol number is neither 1 (IPv4) nor 2 (IPv6); the server answers `522`
    /// with [`NETWORK_PROTOCOL_NOT_SUPPORTED_TEXT`] (RFC 2428 §2, §3).
    #[error("network protocol not supported")]
    UnsupportedNetworkProtocol,
    /// An `EPSV` argument is neither a protocol number nor `ALL`.
    #[error("the EPSV argument is neither a network protocol number nor ALL")]
    InvalidEpsvArgument,
}

impl AddrError {
    /// The reply code a server sends when a client's `PORT`, `EPRT` or `EPSV` argument fails to
    /// parse: `522` for an unsupported network protocol (RFC 2428 §2, §3), `501` (syntax error in
    /// parameters) for everything else.
    pub const fn server_reply_code(&self) -> u16 {
        match self {
            Self::UnsupportedNetworkProtocol => 522,
            _ => 501,
        }
    }
}

/// A network protocol of RFC 2428, named by its IANA address-family number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NetworkProtocol {
    /// Internet Protocol version 4, number 1.
    Ipv4,
    /// Internet Protocol version 6, number 2.
    Ipv6,
}

impl NetworkProtocol {
    /// The RFC 2428 `net-prt` number: 1 for IPv4, 2 for IPv6.
    pub const fn number(self) -> u8 {
        match self {
            Self::Ipv4 => 1,
            Self::Ipv6 => 2,
        }
    }

    /// The protocol with the given `net-prt` number, if it is 1 or 2.
    pub const fn from_number(number: u32) -> Option<Self> {
        match number {
            1 => Some(Self::Ipv4),
            2 => Some(Self::Ipv6),
            _ => None,
        }
    }

    /// The protocol an address belongs to (an IPv4-mapped IPv6 address is IPv6).
    pub const fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => Self::Ipv4,
            IpAddr::V6(_) => Self::Ipv6,
        }
    }
}

/// What an `EPSV` command asks for (RFC 2428 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EpsvRequest {
    /// `EPSV` without argument: listen on the control connection's network protocol.
    Any,
    /// `EPSV <net-prt>`: listen on the given network protocol.
    Protocol(NetworkProtocol),
    /// `EPSV ALL`: from now on only `EPSV` may set up data connections (checklist E06).
    All,
}

/// The text of the `522` reply to an `EPRT` or `EPSV` naming an unknown network protocol when
/// the server supports IPv4 and IPv6 (RFC 2428 §2: the supported numbers in parentheses, and no
/// parenthesis before them).
pub const NETWORK_PROTOCOL_NOT_SUPPORTED_TEXT: &str = "Network protocol not supported, use (1,2)";

/// The text of the `522` reply for an unsupported network protocol, listing the protocols this
/// server supports, e.g. `Network protocol not supported, use (1)` for an IPv4-only listener.
pub fn network_protocol_not_supported_text(supported: &[NetworkProtocol]) -> String {
    let mut text = String::from("Network protocol not supported, use (");
    for (index, protocol) in supported.iter().enumerate() {
        if index > 0 {
            text.push(',');
        }
        text.push(char::from(b'0' + protocol.number()));
    }
    text.push(')');
    text
}

/// Folds an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) to its IPv4 address and returns every
/// other address unchanged. IPv4-compatible addresses (`::a.b.c.d`, deprecated) are not folded,
/// so `::1` stays the IPv6 loopback.
pub const fn canonical_ip(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// Whether two addresses name the same host once IPv4-mapped IPv6 addresses are folded: the
/// comparison for the bounce check (`PORT`/`EPRT` address against the control peer) and the
/// port-theft check (data peer against the control peer).
pub fn is_same_host(a: IpAddr, b: IpAddr) -> bool {
    canonical_ip(a) == canonical_ip(b)
}

/// Parses a non-empty run of ASCII digits, saturating at `u32::MAX` so absurd runs cannot
/// overflow; `None` when the run is empty or holds anything but digits.
fn parse_decimal(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(digits.iter().fold(0_u32, |value, digit| {
        value
            .saturating_mul(10)
            .saturating_add(u32::from(digit - b'0'))
    }))
}

/// Parses a decimal TCP port of an extended address: 1–65535.
fn parse_port(digits: &[u8]) -> Result<u16, AddrError> {
    let value = parse_decimal(digits).ok_or(AddrError::InvalidNumber)?;
    match u16::try_from(value) {
        Ok(port) if port != 0 => Ok(port),
        _ => Err(AddrError::PortOutOfRange),
    }
}

/// Builds the address of `h1,h2,h3,h4,p1,p2`, checking every field against 0–255 and the port
/// against 0.
fn address_from_six(fields: [u32; 6]) -> Result<SocketAddrV4, AddrError> {
    let mut bytes = [0_u8; 6];
    for (byte, field) in bytes.iter_mut().zip(fields) {
        *byte = u8::try_from(field).map_err(|_| AddrError::ByteOutOfRange)?;
    }
    let [h1, h2, h3, h4, p1, p2] = bytes;
    let port = u16::from_be_bytes([p1, p2]);
    if port == 0 {
        return Err(AddrError::PortOutOfRange);
    }
    Ok(SocketAddrV4::new(Ipv4Addr::new(h1, h2, h3, h4), port))
}

/// Checks an RFC 2428 delimiter: one ASCII character in 33–126.
fn check_delimiter(delimiter: u8) -> Result<(), AddrError> {
    if (33..=126).contains(&delimiter) {
        Ok(())
    } else {
        Err(AddrError::InvalidDelimiter)
    }
}

/// Parses the text of a `227` reply (everything after the code; including the code is harmless)
/// into the address the server offers.
///
/// The text is scanned for the first run of exactly six comma-separated decimal numbers, whatever
/// surrounds it: `Entering Passive Mode (h1,h2,h3,h4,p1,p2)`, the same without parentheses,
/// `=h1,…`, trailing text, or other numbers before it. Each number must be 0–255 and the port
/// must not be 0. A run of seven or more numbers is refused as ambiguous.
///
/// The client should by default ignore the returned IP and dial the control peer (checklist
/// §3.9, CVE-2020-8284); only the port is then used.
pub fn parse_pasv_reply(text: &[u8]) -> Result<SocketAddrV4, AddrError> {
    let mut index = 0;
    while index < text.len() {
        if !text[index].is_ascii_digit() {
            index += 1;
            continue;
        }
        let mut fields = [0_u32; 6];
        let mut count = 0_usize;
        let mut position = index;
        loop {
            let start = position;
            while text.get(position).is_some_and(u8::is_ascii_digit) {
                position += 1;
            }
            if let Some(slot) = fields.get_mut(count) {
                // The run is all digits and non-empty here, so `parse_decimal` cannot fail.
                *slot = parse_decimal(&text[start..position]).unwrap_or(u32::MAX);
            }
            count = count.saturating_add(1);
            // The run continues over a comma, optional spaces and another number.
            if text.get(position) != Some(&b',') {
                break;
            }
            let mut next = position + 1;
            while text.get(next) == Some(&b' ') {
                next += 1;
            }
            if !text.get(next).is_some_and(u8::is_ascii_digit) {
                break;
            }
            position = next;
        }
        match count {
            6 => return address_from_six(fields),
            7.. => return Err(AddrError::AmbiguousNumberRun { count }),
            _ => index = position,
        }
    }
    Err(AddrError::NoPassiveAddress)
}

/// Parses the text of a `229` reply (everything after the code) into the port the server
/// listens on (RFC 2428 §3, checklist E03/E04).
///
/// The parenthesised part starts at the first `(`; the character after it is the delimiter
/// (ASCII 33–126), and the rest must be exactly `<d><d><d>port<d>)`, the first two fields empty.
/// Text after `)` is ignored. The client connects to the control peer's address.
pub fn parse_epsv_reply(text: &[u8]) -> Result<u16, AddrError> {
    let open = text
        .iter()
        .position(|&byte| byte == b'(')
        .ok_or(AddrError::MissingParentheses)?;
    let (&delimiter, inside) = text[open + 1..]
        .split_first()
        .ok_or(AddrError::MalformedExtendedAddress)?;
    check_delimiter(delimiter)?;
    // Read three fields, each ended by the delimiter, then require the closing parenthesis.
    // Reading field by field (instead of searching for `)`) keeps `)` usable as a delimiter.
    let mut rest = inside;
    let mut fields: [&[u8]; 3] = [&[]; 3];
    for field in &mut fields {
        let end = rest
            .iter()
            .position(|&byte| byte == delimiter)
            .ok_or(AddrError::MalformedExtendedAddress)?;
        *field = &rest[..end];
        rest = &rest[end + 1..];
    }
    if rest.first() != Some(&b')') {
        return Err(AddrError::MalformedExtendedAddress);
    }
    let [protocol, address, port] = fields;
    if !protocol.is_empty() || !address.is_empty() {
        return Err(AddrError::EpsvFieldsNotEmpty);
    }
    parse_port(port)
}

/// Parses the argument of a `PORT` command (server role): exactly `h1,h2,h3,h4,p1,p2`, six
/// decimal fields without spaces, each 0–255, port not 0 (checklist §3.8).
///
/// Refusing ports below 1024 (`504`) and foreign addresses is the session's policy.
pub fn parse_port_argument(arg: &[u8]) -> Result<SocketAddrV4, AddrError> {
    let mut fields = [0_u32; 6];
    let mut found = 0_usize;
    for field in arg.split(|&byte| byte == b',') {
        if found == fields.len() {
            return Err(AddrError::WrongFieldCount { found: found + 1 });
        }
        fields[found] = parse_decimal(field).ok_or(AddrError::InvalidNumber)?;
        found += 1;
    }
    if found != fields.len() {
        return Err(AddrError::WrongFieldCount { found });
    }
    address_from_six(fields)
}

/// Parses the argument of an `EPRT` command (server role, RFC 2428 §2, checklist E01/E02):
/// `<d>net-prt<d>net-addr<d>tcp-port<d>` with four identical delimiters from ASCII 33–126.
///
/// `net-prt` 1 needs a dotted-decimal IPv4 address, 2 an IPv6 text address; any other number is
/// [`AddrError::UnsupportedNetworkProtocol`] (reply `522`, checked before the address because the
/// address format of an unknown protocol is unknown). The port must be 1–65535. An IPv4-mapped
/// IPv6 address stays [`SocketAddr::V6`]; see [`canonical_ip`].
pub fn parse_eprt_argument(arg: &[u8]) -> Result<SocketAddr, AddrError> {
    let (&delimiter, body) = arg
        .split_first()
        .ok_or(AddrError::MalformedExtendedAddress)?;
    check_delimiter(delimiter)?;
    // `body` must be `prt<d>addr<d>port<d>`: splitting gives three fields and an empty tail.
    let mut parts = body.split(|&byte| byte == delimiter);
    let (Some(protocol), Some(address), Some(port), Some([]), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(AddrError::MalformedExtendedAddress);
    };
    let protocol = parse_decimal(protocol).ok_or(AddrError::InvalidNumber)?;
    let protocol =
        NetworkProtocol::from_number(protocol).ok_or(AddrError::UnsupportedNetworkProtocol)?;
    let ip = parse_network_address(protocol, address)?;
    let port = parse_port(port)?;
    Ok(match ip {
        IpAddr::V4(v4) => SocketAddr::V4(SocketAddrV4::new(v4, port)),
        IpAddr::V6(v6) => SocketAddr::V6(SocketAddrV6::new(v6, port, 0, 0)),
    })
}

/// Parses the `net-addr` of an `EPRT` for the named protocol, telling a wrong family apart from
/// text that is no address at all.
fn parse_network_address(protocol: NetworkProtocol, text: &[u8]) -> Result<IpAddr, AddrError> {
    let text = core::str::from_utf8(text).map_err(|_| AddrError::InvalidNetworkAddress)?;
    let as_v4 = text.parse::<Ipv4Addr>();
    let as_v6 = text.parse::<Ipv6Addr>();
    match (protocol, as_v4, as_v6) {
        (NetworkProtocol::Ipv4, Ok(v4), _) => Ok(IpAddr::V4(v4)),
        (NetworkProtocol::Ipv6, _, Ok(v6)) => Ok(IpAddr::V6(v6)),
        (NetworkProtocol::Ipv4, Err(_), Ok(_)) | (NetworkProtocol::Ipv6, Ok(_), Err(_)) => {
            Err(AddrError::AddressFamilyMismatch)
        }
        _ => Err(AddrError::InvalidNetworkAddress),
    }
}

/// Parses the argument of an `EPSV` command (server role, RFC 2428 §3): none (or empty) is
/// [`EpsvRequest::Any`], `ALL` in any case is [`EpsvRequest::All`], `1`/`2` name a protocol.
/// Another number is [`AddrError::UnsupportedNetworkProtocol`] (reply `522`, checklist E05);
/// anything else is [`AddrError::InvalidEpsvArgument`].
pub fn parse_epsv_argument(arg: Option<&[u8]>) -> Result<EpsvRequest, AddrError> {
    match arg {
        None | Some([]) => Ok(EpsvRequest::Any),
        Some(arg) if arg.eq_ignore_ascii_case(b"ALL") => Ok(EpsvRequest::All),
        Some(arg) => {
            let number = parse_decimal(arg).ok_or(AddrError::InvalidEpsvArgument)?;
            NetworkProtocol::from_number(number)
                .map(EpsvRequest::Protocol)
                .ok_or(AddrError::UnsupportedNetworkProtocol)
        }
    }
}

/// Appends the `PORT` argument `h1,h2,h3,h4,p1,p2` for an address (client role). The caller
/// passes the port its listener is bound to, which is never 0.
pub fn encode_port_argument(addr: SocketAddrV4, out: &mut Vec<u8>) {
    out.extend_from_slice(six_fields(addr).as_bytes());
}

/// Appends the `EPRT` argument `|1|a.b.c.d|port|` or `|2|ipv6-text|port|` (client role). `|`
/// never occurs in either address form, so it is always a valid delimiter. An IPv6 scope id has
/// no representation in `EPRT` and is dropped.
pub fn encode_eprt_argument(addr: SocketAddr, out: &mut Vec<u8>) {
    let protocol = NetworkProtocol::of(addr.ip()).number();
    let text = format!("|{protocol}|{}|{}|", addr.ip(), addr.port());
    out.extend_from_slice(text.as_bytes());
}

/// The text of a `227` reply for a passive listener (server role):
/// `Entering Passive Mode (h1,h2,h3,h4,p1,p2)`.
pub fn pasv_reply_text(addr: SocketAddrV4) -> String {
    format!("Entering Passive Mode ({})", six_fields(addr))
}

/// The text of a `229` reply for a passive listener (server role, checklist E03):
/// `Entering Extended Passive Mode (|||port|)`.
pub fn epsv_reply_text(port: u16) -> String {
    format!("Entering Extended Passive Mode (|||{port}|)")
}

/// `h1,h2,h3,h4,p1,p2` for an address.
fn six_fields(addr: SocketAddrV4) -> String {
    let [h1, h2, h3, h4] = addr.ip().octets();
    let [p1, p2] = addr.port().to_be_bytes();
    format!("{h1},{h2},{h3},{h4},{p1},{p2}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v4(a: u8, b: u8, c: u8, d: u8, port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(a, b, c, d), port)
    }

    // ---- 227 ------------------------------------------------------------------------------

    // spec: §3.9
    #[test]
    fn pasv_accepts_real_server_shapes() {
        let expected = v4(127, 0, 0, 1, 1025);
        let shapes: &[&[u8]] = &[
            b"Entering Passive Mode (127,0,0,1,4,1)",
            b"Entering Passive Mode (127,0,0,1,4,1).",
            b"227 Entering Passive Mode (127,0,0,1,4,1)",
            b"Entering Passive Mode 127,0,0,1,4,1",
            b"Entering Passive Mode. 127,0,0,1,4,1",
            b"=127,0,0,1,4,1",
            b"Entering passive mode =127,0,0,1,4,1",
            b"127,0,0,1,4,1",
            b"Passive mode on (127,0,0,1,4,1) - have fun",
            b"Entering Passive Mode 1 2 (127,0,0,1,4,1)",
            b"Server v2.4 build 1,2 Entering Passive Mode (127,0,0,1,4,1)",
            b"Entering Passive Mode (127, 0, 0, 1, 4, 1)",
            b"Entering Passive Mode <127,0,0,1,4,1>",
            b"Entering Passive Mode [127,000,000,001,004,001]",
            b"Entering Passive Mode (127,0,0,1,4,1)\r\n",
        ];
        for shape in shapes {
            assert_eq!(
                parse_pasv_reply(shape),
                Ok(expected),
                "{}",
                String::from_utf8_lossy(shape)
            );
        }
    }

    // spec: §3.9
    // spec: §10 PORT field range
    #[test]
    fn pasv_allows_zero_fields_and_the_full_byte_range() {
        assert_eq!(
            parse_pasv_reply(b"Entering Passive Mode (0,0,0,0,0,1)"),
            Ok(v4(0, 0, 0, 0, 1))
        );
        assert_eq!(
            parse_pasv_reply(b"(255,255,255,255,255,255)"),
            Ok(v4(255, 255, 255, 255, 65535))
        );
        assert_eq!(
            parse_pasv_reply(b"(10,0,0,5,0,21)"),
            Ok(v4(10, 0, 0, 5, 21))
        );
    }

    // spec: §3.9
    #[test]
    fn pasv_rejects_bad_addresses() {
        assert_eq!(
            parse_pasv_reply(b"Entering Passive Mode (127,0,0,1,4)"),
            Err(AddrError::NoPassiveAddress)
        );
        assert_eq!(
            parse_pasv_reply(b"Entering Passive Mode"),
            Err(AddrError::NoPassiveAddress)
        );
        assert_eq!(parse_pasv_reply(b""), Err(AddrError::NoPassiveAddress));
        assert_eq!(
            parse_pasv_reply(b"(127,0,0,256,4,1)"),
            Err(AddrError::ByteOutOfRange)
        );
        assert_eq!(
            parse_pasv_reply(b"(127,0,0,1,4,99999999999999999999999999999)"),
            Err(AddrError::ByteOutOfRange)
        );
        assert_eq!(
            parse_pasv_reply(b"(127,0,0,1,0,0)"),
            Err(AddrError::PortOutOfRange)
        );
        // Seven numbers: no way to tell which six are meant.
        assert_eq!(
            parse_pasv_reply(b"(127,0,0,1,4,1,7)"),
            Err(AddrError::AmbiguousNumberRun { count: 7 })
        );
        assert_eq!(
            parse_pasv_reply(b"(1,127,0,0,1,4,1)"),
            Err(AddrError::AmbiguousNumberRun { count: 7 })
        );
        // Space before a comma ends the run.
        assert_eq!(
            parse_pasv_reply(b"(127 ,0,0,1,4,1)"),
            Err(AddrError::NoPassiveAddress)
        );
        // Negative numbers are not decimal integers of the grammar; the sign is text.
        assert_eq!(
            parse_pasv_reply(b"(127,0,0,1,-4,1)"),
            Err(AddrError::NoPassiveAddress)
        );
    }

    // spec: §3.9
    #[test]
    fn pasv_takes_the_first_six_number_run() {
        assert_eq!(
            parse_pasv_reply(b"(10,0,0,1,0,20) or (10,0,0,2,0,21)"),
            Ok(v4(10, 0, 0, 1, 20))
        );
        // A short run before the address is skipped, even when it uses commas.
        assert_eq!(
            parse_pasv_reply(b"1,2,3 then 9,8,7,6,5,4"),
            Ok(v4(9, 8, 7, 6, 1284))
        );
    }

    // ---- 229 ------------------------------------------------------------------------------

    // spec: E03
    // spec: E04
    #[test]
    fn epsv_reply_accepts_rfc_and_other_delimiters() {
        assert_eq!(
            parse_epsv_reply(b"Entering Extended Passive Mode (|||6446|)"),
            Ok(6446)
        );
        assert_eq!(
            parse_epsv_reply(b"229 Entering Extended Passive Mode (|||6446|)."),
            Ok(6446)
        );
        assert_eq!(parse_epsv_reply(b"EPSV ok (!!!1!)"), Ok(1));
        assert_eq!(parse_epsv_reply(b"(~~~65535~)"), Ok(65535));
        assert_eq!(parse_epsv_reply(b"()))2121))"), Ok(2121));
        assert_eq!(parse_epsv_reply(b"(###00021#)"), Ok(21));
    }

    // spec: E03
    // spec: E04
    #[test]
    fn epsv_reply_rejects_malformed_text() {
        assert_eq!(
            parse_epsv_reply(b"Entering Extended Passive Mode |||6446|"),
            Err(AddrError::MissingParentheses)
        );
        assert_eq!(
            parse_epsv_reply(b"(|||6446|"),
            Err(AddrError::MalformedExtendedAddress)
        );
        assert_eq!(
            parse_epsv_reply(b"(|||6446)"),
            Err(AddrError::MalformedExtendedAddress)
        );
        assert_eq!(
            parse_epsv_reply(b"(||6446|)"),
            Err(AddrError::MalformedExtendedAddress)
        );
        assert_eq!(
            parse_epsv_reply(b"(|||6446||)"),
            Err(AddrError::MalformedExtendedAddress)
        );
        assert_eq!(
            parse_epsv_reply(b"("),
            Err(AddrError::MalformedExtendedAddress)
        );
        assert_eq!(
            parse_epsv_reply(b"(|1|::1|6446|)"),
            Err(AddrError::EpsvFieldsNotEmpty)
        );
        assert_eq!(
            parse_epsv_reply(b"(||127.0.0.1|6446|)"),
            Err(AddrError::EpsvFieldsNotEmpty)
        );
        assert_eq!(
            parse_epsv_reply(b"( ( (6446 )"),
            Err(AddrError::InvalidDelimiter)
        );
        assert_eq!(
            parse_epsv_reply(b"(\x7f\x7f\x7f6446\x7f)"),
            Err(AddrError::InvalidDelimiter)
        );
        assert_eq!(parse_epsv_reply(b"(|||0|)"), Err(AddrError::PortOutOfRange));
        assert_eq!(
            parse_epsv_reply(b"(|||65536|)"),
            Err(AddrError::PortOutOfRange)
        );
        assert_eq!(
            parse_epsv_reply(b"(|||99999999999999999999999|)"),
            Err(AddrError::PortOutOfRange)
        );
        assert_eq!(parse_epsv_reply(b"(||||)"), Err(AddrError::InvalidNumber));
        assert_eq!(
            parse_epsv_reply(b"(|||+21|)"),
            Err(AddrError::InvalidNumber)
        );
        assert_eq!(
            parse_epsv_reply(b"(||| 21|)"),
            Err(AddrError::InvalidNumber)
        );
    }

    // ---- PORT -----------------------------------------------------------------------------

    // spec: §3.8
    // spec: §10 PORT field range
    #[test]
    fn port_argument_accepts_valid_fields() {
        assert_eq!(
            parse_port_argument(b"127,0,0,1,4,1"),
            Ok(v4(127, 0, 0, 1, 1025))
        );
        assert_eq!(parse_port_argument(b"0,0,0,0,0,1"), Ok(v4(0, 0, 0, 0, 1)));
        assert_eq!(
            parse_port_argument(b"192,168,000,010,255,255"),
            Ok(v4(192, 168, 0, 10, 65535))
        );
    }

    // spec: §3.8
    #[test]
    fn port_argument_rejects_invalid_fields() {
        let cases: &[(&[u8], AddrError)] = &[
            (b"127,0,0,1,4", AddrError::WrongFieldCount { found: 5 }),
            (b"127,0,0,1,4,1,5", AddrError::WrongFieldCount { found: 7 }),
            (b"127,0,0,1,4,1,", AddrError::WrongFieldCount { found: 7 }),
            (b"", AddrError::InvalidNumber),
            (b"127,0,0,,4,1", AddrError::InvalidNumber),
            (b"127, 0,0,1,4,1", AddrError::InvalidNumber),
            (b" 127,0,0,1,4,1", AddrError::InvalidNumber),
            (b"127,0,0,1,4,1 ", AddrError::InvalidNumber),
            (b"127,0,0,1,+4,1", AddrError::InvalidNumber),
            (b"127,0,0,1,4,x", AddrError::InvalidNumber),
            (b"(127,0,0,1,4,1)", AddrError::InvalidNumber),
            (b"127,0,0,256,4,1", AddrError::ByteOutOfRange),
            (
                b"127,0,0,1,4,1000000000000000000000000",
                AddrError::ByteOutOfRange,
            ),
            (b"127,0,0,1,0,0", AddrError::PortOutOfRange),
        ];
        for (arg, error) in cases {
            assert_eq!(
                parse_port_argument(arg),
                Err(*error),
                "{}",
                String::from_utf8_lossy(arg)
            );
        }
    }

    // ---- EPRT -----------------------------------------------------------------------------

    // spec: E01
    #[test]
    fn eprt_argument_accepts_rfc_examples_and_other_delimiters() {
        assert_eq!(
            parse_eprt_argument(b"|1|132.235.1.2|6275|"),
            Ok(SocketAddr::V4(v4(132, 235, 1, 2, 6275)))
        );
        let v6: Ipv6Addr = "1080::8:800:200C:417A".parse().unwrap();
        assert_eq!(
            parse_eprt_argument(b"|2|1080::8:800:200C:417A|5282|"),
            Ok(SocketAddr::V6(SocketAddrV6::new(v6, 5282, 0, 0)))
        );
        assert_eq!(
            parse_eprt_argument(b"!1!127.0.0.1!65535!"),
            Ok(SocketAddr::V4(v4(127, 0, 0, 1, 65535)))
        );
        assert_eq!(
            parse_eprt_argument(b"#2#::1#1#"),
            Ok(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::LOCALHOST,
                1,
                0,
                0
            )))
        );
    }

    // spec: E01
    // spec: E02
    #[test]
    fn eprt_argument_rejects_malformed_arguments() {
        let cases: &[(&[u8], AddrError)] = &[
            (b"", AddrError::MalformedExtendedAddress),
            (b"|1|127.0.0.1|21", AddrError::MalformedExtendedAddress),
            (b"|1|127.0.0.1|21||", AddrError::MalformedExtendedAddress),
            (b"|1|127.0.0.1!21|", AddrError::MalformedExtendedAddress),
            (b"|1!127.0.0.1!21!", AddrError::MalformedExtendedAddress),
            (b" |1|127.0.0.1|21|", AddrError::InvalidDelimiter),
            (b"\x7f1\x7f127.0.0.1\x7f21\x7f", AddrError::InvalidDelimiter),
            (b"||127.0.0.1|21|", AddrError::InvalidNumber),
            (b"|x|127.0.0.1|21|", AddrError::InvalidNumber),
            (b"|1||21|", AddrError::InvalidNetworkAddress),
            (b"|1| 127.0.0.1|21|", AddrError::InvalidNetworkAddress),
            (b"|1|127.0.0.1 |21|", AddrError::InvalidNetworkAddress),
            (b"|1|127.0.0.01|21|", AddrError::InvalidNetworkAddress),
            (b"|1|127.0.0|21|", AddrError::InvalidNetworkAddress),
            (b"|1|localhost|21|", AddrError::InvalidNetworkAddress),
            (b"|2|fe80::1%eth0|21|", AddrError::InvalidNetworkAddress),
            (b"|2|\xff::1|21|", AddrError::InvalidNetworkAddress),
            (b"|1|::1|21|", AddrError::AddressFamilyMismatch),
            (b"|2|127.0.0.1|21|", AddrError::AddressFamilyMismatch),
            (b"|1|127.0.0.1|0|", AddrError::PortOutOfRange),
            (b"|1|127.0.0.1|65536|", AddrError::PortOutOfRange),
            (b"|1|127.0.0.1||", AddrError::InvalidNumber),
            (b"|1|127.0.0.1| 21|", AddrError::InvalidNumber),
        ];
        for (arg, error) in cases {
            assert_eq!(
                parse_eprt_argument(arg),
                Err(*error),
                "{}",
                String::from_utf8_lossy(arg)
            );
            // Syntax errors are answered with 501, never with the 522 of an unknown protocol.
            assert_eq!(error.server_reply_code(), 501);
        }
    }

    // spec: E02
    #[test]
    fn eprt_unknown_protocol_is_a_distinct_522_error() {
        for arg in [
            &b"|3|127.0.0.1|21|"[..],
            b"|0|127.0.0.1|21|",
            b"|99999999999999999999|whatever|21|",
            b"|3|anything at all|not a port|",
        ] {
            let error = parse_eprt_argument(arg).unwrap_err();
            assert_eq!(error, AddrError::UnsupportedNetworkProtocol);
            assert_eq!(error.server_reply_code(), 522);
        }
        assert_eq!(AddrError::PortOutOfRange.server_reply_code(), 501);
        assert_eq!(
            NETWORK_PROTOCOL_NOT_SUPPORTED_TEXT,
            "Network protocol not supported, use (1,2)"
        );
        assert_eq!(
            network_protocol_not_supported_text(&[NetworkProtocol::Ipv4, NetworkProtocol::Ipv6]),
            NETWORK_PROTOCOL_NOT_SUPPORTED_TEXT
        );
        assert_eq!(
            network_protocol_not_supported_text(&[NetworkProtocol::Ipv4]),
            "Network protocol not supported, use (1)"
        );
        // RFC 2428 §2: no parenthesis in the human text before the list.
        let text = NETWORK_PROTOCOL_NOT_SUPPORTED_TEXT;
        let open = text.find('(').unwrap();
        assert!(!text[..open].contains(')'));
    }

    // spec: E01
    #[test]
    fn eprt_mapped_ipv6_stays_v6_and_canonicalises_to_v4() {
        let parsed = parse_eprt_argument(b"|2|::ffff:127.0.0.1|2000|").unwrap();
        let SocketAddr::V6(v6) = parsed else {
            panic!("expected V6, got {parsed}");
        };
        assert_eq!(v6.ip().to_ipv4_mapped(), Some(Ipv4Addr::LOCALHOST));
        assert_eq!(canonical_ip(parsed.ip()), IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert!(is_same_host(parsed.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert!(!is_same_host(
            parsed.ip(),
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))
        ));
        // `::1` is not IPv4-compatible folding material: it stays the IPv6 loopback.
        assert_eq!(
            canonical_ip(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            IpAddr::V6(Ipv6Addr::LOCALHOST)
        );
        assert!(!is_same_host(
            IpAddr::V6(Ipv6Addr::LOCALHOST),
            IpAddr::V4(Ipv4Addr::new(0, 0, 0, 1))
        ));
    }

    // ---- EPSV argument --------------------------------------------------------------------

    // spec: E05
    // spec: E06 (the parsing part: `EPSV ALL` is recognised in any case; the later rejection
    // of other data commands is the session's)
    #[test]
    fn epsv_argument_variants() {
        assert_eq!(parse_epsv_argument(None), Ok(EpsvRequest::Any));
        assert_eq!(parse_epsv_argument(Some(b"")), Ok(EpsvRequest::Any));
        for all in [&b"ALL"[..], b"all", b"aLl"] {
            assert_eq!(parse_epsv_argument(Some(all)), Ok(EpsvRequest::All));
        }
        assert_eq!(
            parse_epsv_argument(Some(b"1")),
            Ok(EpsvRequest::Protocol(NetworkProtocol::Ipv4))
        );
        assert_eq!(
            parse_epsv_argument(Some(b"2")),
            Ok(EpsvRequest::Protocol(NetworkProtocol::Ipv6))
        );
        assert_eq!(
            parse_epsv_argument(Some(b"3")),
            Err(AddrError::UnsupportedNetworkProtocol)
        );
        assert_eq!(
            parse_epsv_argument(Some(b"99999999999999999999"))
                .unwrap_err()
                .server_reply_code(),
            522
        );
        for bad in [&b"ALLX"[..], b"AL", b" ALL", b"1 ", b"-1", b"|1|"] {
            assert_eq!(
                parse_epsv_argument(Some(bad)),
                Err(AddrError::InvalidEpsvArgument),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(NetworkProtocol::Ipv4.number(), 1);
        assert_eq!(NetworkProtocol::Ipv6.number(), 2);
        assert_eq!(NetworkProtocol::from_number(2), Some(NetworkProtocol::Ipv6));
        assert_eq!(NetworkProtocol::from_number(0), None);
    }

    // ---- encoders -------------------------------------------------------------------------

    // spec: §3.8
    // spec: §3.9
    // spec: E03
    #[test]
    fn encoders_produce_the_documented_text() {
        let mut out = Vec::new();
        encode_port_argument(v4(192, 168, 1, 2, 1025), &mut out);
        assert_eq!(out, b"192,168,1,2,4,1");

        out.clear();
        encode_eprt_argument(SocketAddr::V4(v4(132, 235, 1, 2, 6275)), &mut out);
        assert_eq!(out, b"|1|132.235.1.2|6275|");

        out.clear();
        let v6: Ipv6Addr = "1080::8:800:200C:417A".parse().unwrap();
        encode_eprt_argument(SocketAddr::V6(SocketAddrV6::new(v6, 5282, 0, 7)), &mut out);
        assert_eq!(out, b"|2|1080::8:800:200c:417a|5282|");

        assert_eq!(
            pasv_reply_text(v4(127, 0, 0, 1, 1025)),
            "Entering Passive Mode (127,0,0,1,4,1)"
        );
        assert_eq!(
            epsv_reply_text(6446),
            "Entering Extended Passive Mode (|||6446|)"
        );
    }

    fn arb_v4() -> impl Strategy<Value = SocketAddrV4> {
        (any::<[u8; 4]>(), 1_u16..).prop_map(|(ip, port)| SocketAddrV4::new(ip.into(), port))
    }

    fn arb_v6() -> impl Strategy<Value = SocketAddrV6> {
        (any::<[u8; 16]>(), 1_u16..).prop_map(|(ip, port)| SocketAddrV6::new(ip.into(), port, 0, 0))
    }

    proptest! {
        // spec: §3.8
        #[test]
        fn port_argument_round_trips(addr in arb_v4()) {
            let mut out = Vec::new();
            encode_port_argument(addr, &mut out);
            prop_assert_eq!(parse_port_argument(&out), Ok(addr));
        }

        // spec: E01
        #[test]
        fn eprt_v4_round_trips(addr in arb_v4()) {
            let mut out = Vec::new();
            encode_eprt_argument(SocketAddr::V4(addr), &mut out);
            prop_assert_eq!(parse_eprt_argument(&out), Ok(SocketAddr::V4(addr)));
        }

        // spec: E01
        #[test]
        fn eprt_v6_round_trips(addr in arb_v6()) {
            let mut out = Vec::new();
            encode_eprt_argument(SocketAddr::V6(addr), &mut out);
            prop_assert_eq!(parse_eprt_argument(&out), Ok(SocketAddr::V6(addr)));
        }

        // spec: §3.9
        #[test]
        fn pasv_text_round_trips(addr in arb_v4(), code in proptest::bool::ANY) {
            let text = pasv_reply_text(addr);
            let line = if code { format!("227 {text}.\r\n") } else { text };
            prop_assert_eq!(parse_pasv_reply(line.as_bytes()), Ok(addr));
        }

        // spec: E03
        // spec: E04
        #[test]
        fn epsv_text_round_trips(port in 1_u16..) {
            prop_assert_eq!(parse_epsv_reply(epsv_reply_text(port).as_bytes()), Ok(port));
        }

        // spec: E04
        #[test]
        fn epsv_reply_accepts_any_printable_delimiter(
            port in 1_u16..,
            delimiter in prop_oneof![33_u8..=47, 58_u8..=126],
        ) {
            let d = char::from(delimiter);
            let text = format!("Entering Extended Passive Mode ({d}{d}{d}{port}{d})");
            prop_assert_eq!(parse_epsv_reply(text.as_bytes()), Ok(port));
        }

        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse_pasv_reply(&bytes);
            let _ = parse_epsv_reply(&bytes);
            let _ = parse_port_argument(&bytes);
            let _ = parse_eprt_argument(&bytes);
            let _ = parse_epsv_argument(Some(&bytes));
        }

        #[test]
        fn parsers_never_panic_on_address_like_bytes(
            bytes in proptest::collection::vec(
                prop_oneof![Just(b','), Just(b'|'), Just(b'('), Just(b')'), Just(b':'),
                    Just(b'.'), Just(b' '), b'0'..=b'9'],
                0..48,
            )
        ) {
            let _ = parse_pasv_reply(&bytes);
            let _ = parse_epsv_reply(&bytes);
            let _ = parse_port_argument(&bytes);
            let _ = parse_eprt_argument(&bytes);
            let _ = parse_epsv_argument(Some(&bytes));
        }
    }
}
