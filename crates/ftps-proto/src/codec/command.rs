//! FTP commands: verbs, typed values, an incremental parser (server role) and an encoder
//! (client role).
//!
//! Syntax (RFC 959 §5.3, RFC 1123 §4.1.2.12, RFC 2640 §3.1, RFC 3659 §2.2; checklist §3.2):
//! - A command is `VERB [SP argument] CRLF`. Verbs and parameter letters (`type i`, `prot p`)
//!   are case-insensitive. The deprecated `XMKD`, `XRMD`, `XPWD`, `XCUP` and `XCWD` are read as
//!   `MKD`, `RMD`, `PWD`, `CDUP` and `CWD` (RFC 1123 §4.1.3.1).
//! - Exactly one SP separates verb and argument; any further space belongs to the argument, since
//!   a pathname may start or end with spaces (RFC 2640 §3.1, RFC 3659 §2.2; RFC 959's "one or
//!   more spaces" loses such names). An empty argument (`NOOP ` with a trailing SP) counts as
//!   none.
//! - Arguments and pathnames are bytes, never lossily converted: names need not be UTF-8.
//!   `CR NUL` inside a line stands for a CR that is part of a pathname; the NUL is removed
//!   (RFC 2640 §3.1).
//! - The control connection is a Telnet NVT. The [`CommandParser`] removes `IAC IP`, `IAC DM`,
//!   option negotiations (`IAC WILL|WONT|DO|DONT x`, which the server thus never agrees to) and
//!   other two-byte Telnet commands, and turns `IAC IAC` into one `0xFF` byte (RFC 1123
//!   §4.1.2.12), also when a sequence is split across reads.
//!
//! The encoder writes the canonical form `VERB SP argument CRLF`, doubles every `0xFF`
//! (RFC 3659 §2.2) and refuses any argument containing CR or LF: such a byte would end the
//! command early and smuggle the rest in as a second command (CRLF injection from user-supplied
//! paths; checklist §3.2 "client safety", §9.7).
//!
//! Argument formats with their own grammar are only carried here as bytes: `PORT`, `EPRT` and
//! the `EPSV` argument are parsed by [`codec::addr`](super::addr).

use alloc::borrow::Cow;
use alloc::vec::Vec;
use core::fmt;

use super::line::{LineFramer, LineTooLong};
use super::reply::ReplyCode;

/// The Telnet "interpret as command" byte.
const IAC: u8 = 0xFF;
const TELNET_WILL: u8 = 251;
const TELNET_DONT: u8 = 254;

/// A recognised command verb (RFC 959, 2228, 2389, 2428, 3659, 4217, 7151).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // Each variant is the verb of the same name.
pub enum Verb {
    User,
    Pass,
    Acct,
    Cwd,
    Cdup,
    Smnt,
    Quit,
    Rein,
    Port,
    Pasv,
    Type,
    Stru,
    Mode,
    Retr,
    Stor,
    Stou,
    Appe,
    Allo,
    Rest,
    Rnfr,
    Rnto,
    Abor,
    Dele,
    Rmd,
    Mkd,
    Pwd,
    List,
    Nlst,
    Site,
    Syst,
    Stat,
    Help,
    Noop,
    Feat,
    Opts,
    Auth,
    Adat,
    Pbsz,
    Prot,
    Ccc,
    Mic,
    Conf,
    Enc,
    Eprt,
    Epsv,
    Size,
    Mdtm,
    Mlst,
    Mlsd,
    Host,
}

impl Verb {
    /// Every verb, in declaration order.
    pub const ALL: [Self; 50] = [
        Self::User,
        Self::Pass,
        Self::Acct,
        Self::Cwd,
        Self::Cdup,
        Self::Smnt,
        Self::Quit,
        Self::Rein,
        Self::Port,
        Self::Pasv,
        Self::Type,
        Self::Stru,
        Self::Mode,
        Self::Retr,
        Self::Stor,
        Self::Stou,
        Self::Appe,
        Self::Allo,
        Self::Rest,
        Self::Rnfr,
        Self::Rnto,
        Self::Abor,
        Self::Dele,
        Self::Rmd,
        Self::Mkd,
        Self::Pwd,
        Self::List,
        Self::Nlst,
        Self::Site,
        Self::Syst,
        Self::Stat,
        Self::Help,
        Self::Noop,
        Self::Feat,
        Self::Opts,
        Self::Auth,
        Self::Adat,
        Self::Pbsz,
        Self::Prot,
        Self::Ccc,
        Self::Mic,
        Self::Conf,
        Self::Enc,
        Self::Eprt,
        Self::Epsv,
        Self::Size,
        Self::Mdtm,
        Self::Mlst,
        Self::Mlsd,
        Self::Host,
    ];

    /// The canonical upper-case spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::User => "USER",
            Self::Pass => "PASS",
            Self::Acct => "ACCT",
            Self::Cwd => "CWD",
            Self::Cdup => "CDUP",
            Self::Smnt => "SMNT",
            Self::Quit => "QUIT",
            Self::Rein => "REIN",
            Self::Port => "PORT",
            Self::Pasv => "PASV",
            Self::Type => "TYPE",
            Self::Stru => "STRU",
            Self::Mode => "MODE",
            Self::Retr => "RETR",
            Self::Stor => "STOR",
            Self::Stou => "STOU",
            Self::Appe => "APPE",
            Self::Allo => "ALLO",
            Self::Rest => "REST",
            Self::Rnfr => "RNFR",
            Self::Rnto => "RNTO",
            Self::Abor => "ABOR",
            Self::Dele => "DELE",
            Self::Rmd => "RMD",
            Self::Mkd => "MKD",
            Self::Pwd => "PWD",
            Self::List => "LIST",
            Self::Nlst => "NLST",
            Self::Site => "SITE",
            Self::Syst => "SYST",
            Self::Stat => "STAT",
            Self::Help => "HELP",
            Self::Noop => "NOOP",
            Self::Feat => "FEAT",
            Self::Opts => "OPTS",
            Self::Auth => "AUTH",
            Self::Adat => "ADAT",
            Self::Pbsz => "PBSZ",
            Self::Prot => "PROT",
            Self::Ccc => "CCC",
            Self::Mic => "MIC",
            Self::Conf => "CONF",
            Self::Enc => "ENC",
            Self::Eprt => "EPRT",
            Self::Epsv => "EPSV",
            Self::Size => "SIZE",
            Self::Mdtm => "MDTM",
            Self::Mlst => "MLST",
            Self::Mlsd => "MLSD",
            Self::Host => "HOST",
        }
    }

    /// The verb spelled by `token`, case-insensitively, with the RFC 1123 `X` synonyms; `None`
    /// for anything else.
    pub fn parse(token: &[u8]) -> Option<Self> {
        let mut upper = [0u8; 4];
        let upper = upper.get_mut(..token.len())?;
        upper.copy_from_slice(token);
        upper.make_ascii_uppercase();
        let verb = match &*upper {
            b"XMKD" => Self::Mkd,
            b"XRMD" => Self::Rmd,
            b"XPWD" => Self::Pwd,
            b"XCUP" => Self::Cdup,
            b"XCWD" => Self::Cwd,
            spelled => *Self::ALL
                .iter()
                .find(|verb| verb.as_str().as_bytes() == spelled)?,
        };
        Some(verb)
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The format control of an ASCII or EBCDIC transfer type (RFC 959 §3.1.1.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FormatControl {
    /// `N`: no vertical format information (the default).
    #[default]
    NonPrint,
    /// `T`: Telnet format effectors.
    Telnet,
    /// `C`: ASA (Fortran) carriage control.
    CarriageControl,
}

/// The argument of `TYPE` (RFC 959 §3.1.1, §5.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransferType {
    /// `A [N|T|C]`: ASCII.
    Ascii(FormatControl),
    /// `E [N|T|C]`: EBCDIC.
    Ebcdic(FormatControl),
    /// `I`: image (binary).
    Image,
    /// `L n`: local byte size `n` (1–255; `L 8` is what most servers mean by binary).
    Local(u8),
}

/// The argument of `STRU` (RFC 959 §3.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileStructure {
    /// `F`: file, no record structure (the default).
    File,
    /// `R`: record structure.
    Record,
    /// `P`: page structure.
    Page,
}

/// The argument of `MODE` (RFC 959 §3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransferMode {
    /// `S`: stream (the default; the only mode with REST STREAM offsets).
    Stream,
    /// `B`: block.
    Block,
    /// `C`: compressed.
    Compressed,
}

/// The argument of `PROT` (RFC 2228 §3; RFC 4217 §9 uses C and P).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProtectionLevel {
    /// `C`: clear.
    Clear,
    /// `S`: safe (integrity only).
    Safe,
    /// `E`: confidential.
    Confidential,
    /// `P`: private (integrity and confidentiality).
    Private,
}

/// A password. Its `Debug` form is redacted so that logging a [`Command`] never logs it.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Password(Vec<u8>);

impl Password {
    /// Wraps the password bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// The password bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The password bytes, consuming the wrapper.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    /// `true` for an empty password.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A parsed command. Byte arguments are kept exactly as received (after Telnet and `CR NUL`
/// decoding); `Option` arguments are `None` when absent or empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `USER name`.
    User(Vec<u8>),
    /// `PASS [password]`; an absent password is empty (anonymous clients send that).
    Pass(Password),
    /// `ACCT account`.
    Acct(Vec<u8>),
    /// `CWD path` (also `XCWD`).
    Cwd(Vec<u8>),
    /// `CDUP` (also `XCUP`).
    Cdup,
    /// `SMNT path`.
    Smnt(Vec<u8>),
    /// `QUIT`.
    Quit,
    /// `REIN`.
    Rein,
    /// `PORT h1,h2,h3,h4,p1,p2`, unparsed.
    Port(Vec<u8>),
    /// `PASV`.
    Pasv,
    /// `TYPE type`.
    Type(TransferType),
    /// `STRU structure`.
    Stru(FileStructure),
    /// `MODE mode`.
    Mode(TransferMode),
    /// `RETR path`.
    Retr(Vec<u8>),
    /// `STOR path`.
    Stor(Vec<u8>),
    /// `STOU` (RFC 959: no argument).
    Stou,
    /// `APPE path`.
    Appe(Vec<u8>),
    /// `ALLO size [R record-size]`.
    Allo {
        /// Bytes to reserve.
        size: u64,
        /// Maximum record or page size, if given.
        record_size: Option<u64>,
    },
    /// `REST offset` (REST STREAM, RFC 3659 §5: digits only).
    Rest(u64),
    /// `RNFR path`.
    Rnfr(Vec<u8>),
    /// `RNTO path`.
    Rnto(Vec<u8>),
    /// `ABOR`.
    Abor,
    /// `DELE path`.
    Dele(Vec<u8>),
    /// `RMD path` (also `XRMD`).
    Rmd(Vec<u8>),
    /// `MKD path` (also `XMKD`).
    Mkd(Vec<u8>),
    /// `PWD` (also `XPWD`).
    Pwd,
    /// `LIST [path]`.
    List(Option<Vec<u8>>),
    /// `NLST [path]`.
    Nlst(Option<Vec<u8>>),
    /// `SITE command`.
    Site(Vec<u8>),
    /// `SYST`.
    Syst,
    /// `STAT [path]`.
    Stat(Option<Vec<u8>>),
    /// `HELP [topic]`.
    Help(Option<Vec<u8>>),
    /// `NOOP`.
    Noop,
    /// `FEAT` (RFC 2389).
    Feat,
    /// `OPTS command-name [options]` (RFC 2389), unparsed.
    Opts(Vec<u8>),
    /// `AUTH mechanism` (RFC 2228), the mechanism name as sent (compare case-insensitively).
    Auth(Vec<u8>),
    /// `ADAT base64-data` (RFC 2228).
    Adat(Vec<u8>),
    /// `PBSZ size` (RFC 2228), a 32-bit unsigned decimal.
    Pbsz(u32),
    /// `PROT level` (RFC 2228).
    Prot(ProtectionLevel),
    /// `CCC` (RFC 2228).
    Ccc,
    /// `MIC base64-command` (RFC 2228).
    Mic(Vec<u8>),
    /// `CONF base64-command` (RFC 2228).
    Conf(Vec<u8>),
    /// `ENC base64-command` (RFC 2228).
    Enc(Vec<u8>),
    /// `EPRT |proto|address|port|` (RFC 2428), unparsed.
    Eprt(Vec<u8>),
    /// `EPSV [proto | ALL]` (RFC 2428), unparsed.
    Epsv(Option<Vec<u8>>),
    /// `SIZE path` (RFC 3659).
    Size(Vec<u8>),
    /// `MDTM path` (RFC 3659).
    Mdtm(Vec<u8>),
    /// `MLST [path]` (RFC 3659).
    Mlst(Option<Vec<u8>>),
    /// `MLSD [path]` (RFC 3659).
    Mlsd(Option<Vec<u8>>),
    /// `HOST name` (RFC 7151).
    Host(Vec<u8>),
    /// Any other verb, preserved so the server can answer 500/502 and log it.
    Unknown {
        /// The verb as received.
        verb: Vec<u8>,
        /// The argument, if any.
        argument: Option<Vec<u8>>,
    },
}

/// Why a received command line is not a valid command. Carries the verb when it is known, so
/// a server can answer with [`suggested_reply_code`](Self::suggested_reply_code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The line is empty or starts with a space.
    #[error("command line has no verb")]
    NoVerb,
    /// The line was longer than [`CommandLimits::max_line_len`] and was discarded.
    #[error("command line longer than {max_line_len} bytes")]
    LineTooLong {
        /// The exceeded limit.
        max_line_len: usize,
        /// The verb, when the start of the line names one.
        verb: Option<Verb>,
    },
    /// The verb requires an argument and none was given.
    #[error("{verb} requires an argument")]
    MissingArgument {
        /// The verb.
        verb: Verb,
    },
    /// The verb takes no argument and one was given.
    #[error("{verb} takes no argument")]
    UnexpectedArgument {
        /// The verb.
        verb: Verb,
    },
    /// The argument does not follow the verb's grammar (e.g. non-digits in `REST`, a `PBSZ`
    /// above 32 bits).
    #[error("syntax error in the argument of {verb}")]
    InvalidArgument {
        /// The verb.
        verb: Verb,
    },
    /// The argument is well-formed but names a parameter value this codec does not know
    /// (e.g. `PROT X`, `TYPE Q`, `MODE Z`).
    #[error("{verb} parameter not implemented")]
    UnsupportedParameter {
        /// The verb.
        verb: Verb,
    },
}

impl CommandError {
    /// The verb the error is about, when known.
    pub fn verb(&self) -> Option<Verb> {
        match *self {
            Self::NoVerb => None,
            Self::LineTooLong { verb, .. } => verb,
            Self::MissingArgument { verb }
            | Self::UnexpectedArgument { verb }
            | Self::InvalidArgument { verb }
            | Self::UnsupportedParameter { verb } => Some(verb),
        }
    }

    /// The reply RFC 959 §4.2.1 suggests: `500` for an unusable line (RFC 959 lists "command
    /// line too long" under 500), `501` for argument syntax, `504` for an unknown parameter.
    pub fn suggested_reply_code(&self) -> ReplyCode {
        match self {
            Self::NoVerb | Self::LineTooLong { .. } => ReplyCode::SYNTAX_ERROR,
            Self::MissingArgument { .. }
            | Self::UnexpectedArgument { .. }
            | Self::InvalidArgument { .. } => ReplyCode::ARGUMENT_SYNTAX_ERROR,
            Self::UnsupportedParameter { .. } => ReplyCode::PARAMETER_NOT_IMPLEMENTED,
        }
    }
}

/// Why a command cannot be encoded. Nothing is written when encoding fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandEncodeError {
    /// An argument contains CR or LF, which would inject a second command.
    #[error("argument contains CR or LF (command injection)")]
    LineBreakInArgument {
        /// The verb, `None` for [`Command::Unknown`].
        verb: Option<Verb>,
    },
    /// A verb that requires an argument was given an empty one.
    #[error("{verb} requires a non-empty argument")]
    MissingArgument {
        /// The verb.
        verb: Verb,
    },
    /// A typed argument is out of range (`TYPE L 0`).
    #[error("invalid argument for {verb}")]
    InvalidArgument {
        /// The verb.
        verb: Verb,
    },
    /// A [`Command::Unknown`] verb is empty or contains SP, CR or LF.
    #[error("unknown-command verb is empty or contains SP, CR or LF")]
    InvalidVerb,
}

impl Command {
    /// The verb, `None` for [`Command::Unknown`].
    pub fn verb(&self) -> Option<Verb> {
        Some(match self {
            Self::User(_) => Verb::User,
            Self::Pass(_) => Verb::Pass,
            Self::Acct(_) => Verb::Acct,
            Self::Cwd(_) => Verb::Cwd,
            Self::Cdup => Verb::Cdup,
            Self::Smnt(_) => Verb::Smnt,
            Self::Quit => Verb::Quit,
            Self::Rein => Verb::Rein,
            Self::Port(_) => Verb::Port,
            Self::Pasv => Verb::Pasv,
            Self::Type(_) => Verb::Type,
            Self::Stru(_) => Verb::Stru,
            Self::Mode(_) => Verb::Mode,
            Self::Retr(_) => Verb::Retr,
            Self::Stor(_) => Verb::Stor,
            Self::Stou => Verb::Stou,
            Self::Appe(_) => Verb::Appe,
            Self::Allo { .. } => Verb::Allo,
            Self::Rest(_) => Verb::Rest,
            Self::Rnfr(_) => Verb::Rnfr,
            Self::Rnto(_) => Verb::Rnto,
            Self::Abor => Verb::Abor,
            Self::Dele(_) => Verb::Dele,
            Self::Rmd(_) => Verb::Rmd,
            Self::Mkd(_) => Verb::Mkd,
            Self::Pwd => Verb::Pwd,
            Self::List(_) => Verb::List,
            Self::Nlst(_) => Verb::Nlst,
            Self::Site(_) => Verb::Site,
            Self::Syst => Verb::Syst,
            Self::Stat(_) => Verb::Stat,
            Self::Help(_) => Verb::Help,
            Self::Noop => Verb::Noop,
            Self::Feat => Verb::Feat,
            Self::Opts(_) => Verb::Opts,
            Self::Auth(_) => Verb::Auth,
            Self::Adat(_) => Verb::Adat,
            Self::Pbsz(_) => Verb::Pbsz,
            Self::Prot(_) => Verb::Prot,
            Self::Ccc => Verb::Ccc,
            Self::Mic(_) => Verb::Mic,
            Self::Conf(_) => Verb::Conf,
            Self::Enc(_) => Verb::Enc,
            Self::Eprt(_) => Verb::Eprt,
            Self::Epsv(_) => Verb::Epsv,
            Self::Size(_) => Verb::Size,
            Self::Mdtm(_) => Verb::Mdtm,
            Self::Mlst(_) => Verb::Mlst,
            Self::Mlsd(_) => Verb::Mlsd,
            Self::Host(_) => Verb::Host,
            Self::Unknown { .. } => return None,
        })
    }

    /// Parses one command line: Telnet sequences already removed, terminator excluded.
    /// `CR NUL` is decoded here.
    pub fn parse(line: &[u8]) -> Result<Self, CommandError> {
        let line = decode_cr_nul(line);
        let (token, argument) = match line.iter().position(|&b| b == b' ') {
            Some(sp) => (&line[..sp], Some(&line[sp + 1..])),
            None => (&line[..], None),
        };
        let argument = argument.filter(|arg| !arg.is_empty());
        if token.is_empty() {
            return Err(CommandError::NoVerb);
        }
        let Some(verb) = Verb::parse(token) else {
            return Ok(Self::Unknown {
                verb: token.to_vec(),
                argument: argument.map(<[u8]>::to_vec),
            });
        };
        let required = || {
            argument
                .map(<[u8]>::to_vec)
                .ok_or(CommandError::MissingArgument { verb })
        };
        let none = |command: Self| match argument {
            None => Ok(command),
            Some(_) => Err(CommandError::UnexpectedArgument { verb }),
        };
        let optional = || argument.map(<[u8]>::to_vec);
        let typed = || argument.ok_or(CommandError::MissingArgument { verb });
        let invalid = CommandError::InvalidArgument { verb };
        let unsupported = CommandError::UnsupportedParameter { verb };

        match verb {
            Verb::User => required().map(Self::User),
            Verb::Pass => Ok(Self::Pass(Password(optional().unwrap_or_default()))),
            Verb::Acct => required().map(Self::Acct),
            Verb::Cwd => required().map(Self::Cwd),
            Verb::Cdup => none(Self::Cdup),
            Verb::Smnt => required().map(Self::Smnt),
            Verb::Quit => none(Self::Quit),
            Verb::Rein => none(Self::Rein),
            Verb::Port => required().map(Self::Port),
            Verb::Pasv => none(Self::Pasv),
            Verb::Type => parse_type(typed()?, invalid, unsupported).map(Self::Type),
            Verb::Stru => {
                let structure = match single_letter(typed()?, invalid)? {
                    b'F' => FileStructure::File,
                    b'R' => FileStructure::Record,
                    b'P' => FileStructure::Page,
                    _ => return Err(unsupported),
                };
                Ok(Self::Stru(structure))
            }
            Verb::Mode => {
                let mode = match single_letter(typed()?, invalid)? {
                    b'S' => TransferMode::Stream,
                    b'B' => TransferMode::Block,
                    b'C' => TransferMode::Compressed,
                    _ => return Err(unsupported),
                };
                Ok(Self::Mode(mode))
            }
            Verb::Retr => required().map(Self::Retr),
            Verb::Stor => required().map(Self::Stor),
            Verb::Stou => none(Self::Stou),
            Verb::Appe => required().map(Self::Appe),
            Verb::Allo => {
                let mut fields = typed()?.split(|&b| b == b' ');
                let size = fields.next().and_then(parse_decimal).ok_or(invalid)?;
                let record_size = match (fields.next(), fields.next(), fields.next()) {
                    (None, _, _) => None,
                    (Some(r), Some(record), None) if r.eq_ignore_ascii_case(b"R") => {
                        Some(parse_decimal(record).ok_or(invalid)?)
                    }
                    _ => return Err(invalid),
                };
                Ok(Self::Allo { size, record_size })
            }
            Verb::Rest => parse_decimal(typed()?).map(Self::Rest).ok_or(invalid),
            Verb::Rnfr => required().map(Self::Rnfr),
            Verb::Rnto => required().map(Self::Rnto),
            Verb::Abor => none(Self::Abor),
            Verb::Dele => required().map(Self::Dele),
            Verb::Rmd => required().map(Self::Rmd),
            Verb::Mkd => required().map(Self::Mkd),
            Verb::Pwd => none(Self::Pwd),
            Verb::List => Ok(Self::List(optional())),
            Verb::Nlst => Ok(Self::Nlst(optional())),
            Verb::Site => required().map(Self::Site),
            Verb::Syst => none(Self::Syst),
            Verb::Stat => Ok(Self::Stat(optional())),
            Verb::Help => Ok(Self::Help(optional())),
            Verb::Noop => none(Self::Noop),
            Verb::Feat => none(Self::Feat),
            Verb::Opts => required().map(Self::Opts),
            Verb::Auth => required().map(Self::Auth),
            Verb::Adat => required().map(Self::Adat),
            Verb::Pbsz => parse_decimal(typed()?)
                .and_then(|size| u32::try_from(size).ok())
                .map(Self::Pbsz)
                .ok_or(invalid),
            Verb::Prot => {
                let level = match single_letter(typed()?, invalid)? {
                    b'C' => ProtectionLevel::Clear,
                    b'S' => ProtectionLevel::Safe,
                    b'E' => ProtectionLevel::Confidential,
                    b'P' => ProtectionLevel::Private,
                    _ => return Err(unsupported),
                };
                Ok(Self::Prot(level))
            }
            Verb::Ccc => none(Self::Ccc),
            Verb::Mic => required().map(Self::Mic),
            Verb::Conf => required().map(Self::Conf),
            Verb::Enc => required().map(Self::Enc),
            Verb::Eprt => required().map(Self::Eprt),
            Verb::Epsv => Ok(Self::Epsv(optional())),
            Verb::Size => required().map(Self::Size),
            Verb::Mdtm => required().map(Self::Mdtm),
            Verb::Mlst => Ok(Self::Mlst(optional())),
            Verb::Mlsd => Ok(Self::Mlsd(optional())),
            Verb::Host => required().map(Self::Host),
        }
    }

    /// Appends the canonical wire form `VERB [SP argument] CRLF` to `out`, with every `0xFF`
    /// doubled. An empty optional argument is written as none.
    ///
    /// Fails, leaving `out` unchanged, when an argument contains CR or LF (command injection),
    /// a required argument is empty, or a typed value is out of range.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), CommandEncodeError> {
        let start = out.len();
        let result = self.encode_without_rollback(out);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    fn encode_without_rollback(&self, out: &mut Vec<u8>) -> Result<(), CommandEncodeError> {
        if let Self::Unknown { verb, argument } = self {
            if verb.is_empty() || verb.iter().any(|&b| matches!(b, b' ' | b'\r' | b'\n')) {
                return Err(CommandEncodeError::InvalidVerb);
            }
            push_escaped(out, verb);
            put_optional(out, None, argument.as_deref())?;
            out.extend_from_slice(b"\r\n");
            return Ok(());
        }
        // Every other variant has a verb.
        let Some(verb) = self.verb() else {
            return Err(CommandEncodeError::InvalidVerb);
        };
        out.extend_from_slice(verb.as_str().as_bytes());
        match self {
            Self::User(arg)
            | Self::Acct(arg)
            | Self::Cwd(arg)
            | Self::Smnt(arg)
            | Self::Port(arg)
            | Self::Retr(arg)
            | Self::Stor(arg)
            | Self::Appe(arg)
            | Self::Rnfr(arg)
            | Self::Rnto(arg)
            | Self::Dele(arg)
            | Self::Rmd(arg)
            | Self::Mkd(arg)
            | Self::Site(arg)
            | Self::Opts(arg)
            | Self::Auth(arg)
            | Self::Adat(arg)
            | Self::Mic(arg)
            | Self::Conf(arg)
            | Self::Enc(arg)
            | Self::Eprt(arg)
            | Self::Size(arg)
            | Self::Mdtm(arg)
            | Self::Host(arg) => {
                if arg.is_empty() {
                    return Err(CommandEncodeError::MissingArgument { verb });
                }
                put_optional(out, Some(verb), Some(arg))?;
            }
            Self::Pass(password) => put_optional(out, Some(verb), Some(password.as_bytes()))?,
            Self::List(arg)
            | Self::Nlst(arg)
            | Self::Stat(arg)
            | Self::Help(arg)
            | Self::Epsv(arg)
            | Self::Mlst(arg)
            | Self::Mlsd(arg) => put_optional(out, Some(verb), arg.as_deref())?,
            Self::Type(transfer_type) => {
                let (letter, format) = match transfer_type {
                    TransferType::Ascii(format) => (b'A', Some(format)),
                    TransferType::Ebcdic(format) => (b'E', Some(format)),
                    TransferType::Image => (b'I', None),
                    TransferType::Local(0) => {
                        return Err(CommandEncodeError::InvalidArgument { verb });
                    }
                    TransferType::Local(size) => {
                        out.extend_from_slice(b" L ");
                        push_decimal(out, u64::from(*size));
                        (0, None)
                    }
                };
                if letter != 0 {
                    out.push(b' ');
                    out.push(letter);
                }
                match format {
                    // N is the default and the form every server accepts.
                    None | Some(FormatControl::NonPrint) => {}
                    Some(FormatControl::Telnet) => out.extend_from_slice(b" T"),
                    Some(FormatControl::CarriageControl) => out.extend_from_slice(b" C"),
                }
            }
            Self::Stru(structure) => out.extend_from_slice(match structure {
                FileStructure::File => b" F",
                FileStructure::Record => b" R",
                FileStructure::Page => b" P",
            }),
            Self::Mode(mode) => out.extend_from_slice(match mode {
                TransferMode::Stream => b" S",
                TransferMode::Block => b" B",
                TransferMode::Compressed => b" C",
            }),
            Self::Prot(level) => out.extend_from_slice(match level {
                ProtectionLevel::Clear => b" C",
                ProtectionLevel::Safe => b" S",
                ProtectionLevel::Confidential => b" E",
                ProtectionLevel::Private => b" P",
            }),
            Self::Allo { size, record_size } => {
                out.push(b' ');
                push_decimal(out, *size);
                if let Some(record_size) = record_size {
                    out.extend_from_slice(b" R ");
                    push_decimal(out, *record_size);
                }
            }
            Self::Rest(offset) => {
                out.push(b' ');
                push_decimal(out, *offset);
            }
            Self::Pbsz(size) => {
                out.push(b' ');
                push_decimal(out, u64::from(*size));
            }
            Self::Cdup
            | Self::Quit
            | Self::Rein
            | Self::Pasv
            | Self::Stou
            | Self::Abor
            | Self::Pwd
            | Self::Syst
            | Self::Noop
            | Self::Feat
            | Self::Ccc
            | Self::Unknown { .. } => {}
        }
        out.extend_from_slice(b"\r\n");
        Ok(())
    }
}

/// Writes ` argument` (nothing for `None` or empty), refusing CR and LF.
fn put_optional(
    out: &mut Vec<u8>,
    verb: Option<Verb>,
    argument: Option<&[u8]>,
) -> Result<(), CommandEncodeError> {
    let Some(argument) = argument.filter(|arg| !arg.is_empty()) else {
        return Ok(());
    };
    if argument.iter().any(|&b| b == b'\r' || b == b'\n') {
        return Err(CommandEncodeError::LineBreakInArgument { verb });
    }
    out.push(b' ');
    push_escaped(out, argument);
    Ok(())
}

/// Appends `bytes` with each Telnet IAC doubled (RFC 3659 §2.2).
fn push_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    for chunk in bytes.split_inclusive(|&b| b == IAC) {
        out.extend_from_slice(chunk);
        if chunk.last() == Some(&IAC) {
            out.push(IAC);
        }
    }
}

fn push_decimal(out: &mut Vec<u8>, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        // The remainder is below 10.
        digits[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// A non-empty run of ASCII digits that fits in a `u64`.
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &d| {
        if !d.is_ascii_digit() {
            return None;
        }
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// The upper-cased single letter of a one-byte argument.
fn single_letter(argument: &[u8], invalid: CommandError) -> Result<u8, CommandError> {
    match argument {
        [letter] if letter.is_ascii_alphabetic() => Ok(letter.to_ascii_uppercase()),
        _ => Err(invalid),
    }
}

fn parse_type(
    argument: &[u8],
    invalid: CommandError,
    unsupported: CommandError,
) -> Result<TransferType, CommandError> {
    let mut fields = argument.split(|&b| b == b' ');
    let code = single_letter(fields.next().unwrap_or_default(), invalid)?;
    let second = fields.next();
    if fields.next().is_some() {
        return Err(invalid);
    }
    let format = |second: Option<&[u8]>| match second {
        None => Ok(FormatControl::NonPrint),
        Some(field) => match single_letter(field, invalid)? {
            b'N' => Ok(FormatControl::NonPrint),
            b'T' => Ok(FormatControl::Telnet),
            b'C' => Ok(FormatControl::CarriageControl),
            _ => Err(unsupported),
        },
    };
    match code {
        b'A' => format(second).map(TransferType::Ascii),
        b'E' => format(second).map(TransferType::Ebcdic),
        b'I' if second.is_none() => Ok(TransferType::Image),
        b'L' => second
            .and_then(parse_decimal)
            .and_then(|size| u8::try_from(size).ok())
            .filter(|&size| size != 0)
            .map(TransferType::Local)
            .ok_or(invalid),
        b'I' => Err(invalid),
        _ => Err(unsupported),
    }
}

/// Replaces each `CR NUL` with `CR` (RFC 2640 §3.1), borrowing when there is none.
fn decode_cr_nul(line: &[u8]) -> Cow<'_, [u8]> {
    if !line.windows(2).any(|pair| pair == b"\r\0") {
        return Cow::Borrowed(line);
    }
    let mut decoded = Vec::with_capacity(line.len());
    let mut previous = 0u8;
    for &b in line {
        if !(previous == b'\r' && b == 0) {
            decoded.push(b);
        }
        previous = b;
    }
    Cow::Owned(decoded)
}

/// Bounds on what a [`CommandParser`] buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandLimits {
    /// Maximum bytes in one command line after Telnet decoding, terminator excluded (at least
    /// [`MIN_MAX_LINE_LEN`](super::line::MIN_MAX_LINE_LEN) is used).
    pub max_line_len: usize,
}

impl Default for CommandLimits {
    /// 8 KiB per line: room for a 4 KiB path even with every byte escaped, and a verb.
    fn default() -> Self {
        Self {
            max_line_len: 8 * 1024 + 16,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TelnetState {
    Data,
    /// After an IAC.
    Command,
    /// After `IAC WILL|WONT|DO|DONT`: the next byte is the option code.
    Option,
}

/// Incremental command parser for the server side of the control channel.
///
/// [`push`](Self::push) received bytes in any chunking, then call
/// [`next_command`](Self::next_command) until it returns `None`. Each line yields exactly one
/// item, `Ok` or `Err`; after an error the parser continues with the next line.
#[derive(Debug, Clone)]
pub struct CommandParser {
    framer: LineFramer,
    telnet: TelnetState,
    /// Reused buffer for Telnet decoding of a pushed chunk.
    decoded: Vec<u8>,
}

impl CommandParser {
    /// A parser with the given limits.
    pub fn new(limits: CommandLimits) -> Self {
        Self {
            framer: LineFramer::new(limits.max_line_len),
            telnet: TelnetState::Data,
            decoded: Vec::new(),
        }
    }

    /// The limits in effect (after raising values below the minimum).
    pub fn limits(&self) -> CommandLimits {
        CommandLimits {
            max_line_len: self.framer.max_line_len(),
        }
    }

    /// Appends received bytes, removing Telnet sequences.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.telnet == TelnetState::Data && !bytes.contains(&IAC) {
            self.framer.push(bytes);
            return;
        }
        let mut decoded = core::mem::take(&mut self.decoded);
        decoded.clear();
        for &b in bytes {
            self.telnet = match (self.telnet, b) {
                (TelnetState::Data, IAC) => TelnetState::Command,
                (TelnetState::Data, _) => {
                    decoded.push(b);
                    TelnetState::Data
                }
                (TelnetState::Command, IAC) => {
                    decoded.push(IAC);
                    TelnetState::Data
                }
                (TelnetState::Command, TELNET_WILL..=TELNET_DONT) => TelnetState::Option,
                // IP, DM, and the other two-byte commands (NOP, AYT, ...) carry nothing for
                // the command stream.
                (TelnetState::Command, _) | (TelnetState::Option, _) => TelnetState::Data,
            };
        }
        self.framer.push(&decoded);
        self.decoded = decoded;
    }

    /// The next command or command-line error, or `None` when more bytes are needed.
    pub fn next_command(&mut self) -> Option<Result<Command, CommandError>> {
        Some(match self.framer.next_line()? {
            Ok(line) => Command::parse(line),
            Err(too_long) => Err(line_too_long(too_long)),
        })
    }

    /// `true` when any received byte has not been handed out as part of a command: part of a
    /// line, an unfinished Telnet sequence, or the rest of an over-long line being dropped.
    ///
    /// After `AUTH TLS` this must be `false`; otherwise bytes were pipelined after it in
    /// plaintext and must never be executed as if they had arrived under TLS (checklist §9.1,
    /// CVE-2011-0411).
    pub fn has_buffered_bytes(&self) -> bool {
        !self.framer.is_empty() || self.framer.is_discarding() || self.telnet != TelnetState::Data
    }

    /// Number of decoded bytes buffered in the current partial line.
    pub fn buffered_len(&self) -> usize {
        self.framer.buffered_len()
    }
}

impl Default for CommandParser {
    fn default() -> Self {
        Self::new(CommandLimits::default())
    }
}

fn line_too_long(too_long: LineTooLong) -> CommandError {
    // A verb is at most 4 bytes, so the kept head holds it and its SP when there is one.
    let head = too_long.head();
    let verb = head
        .iter()
        .position(|&b| b == b' ')
        .and_then(|sp| Verb::parse(&head[..sp]));
    CommandError::LineTooLong {
        max_line_len: too_long.max_line_len(),
        verb,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::vec;
    use proptest::prelude::*;
    use proptest::sample::select;

    fn parse(line: &[u8]) -> Result<Command, CommandError> {
        Command::parse(line)
    }

    fn feed<'a>(
        parser: &mut CommandParser,
        chunks: impl IntoIterator<Item = &'a [u8]>,
    ) -> Vec<Result<Command, CommandError>> {
        let mut out = Vec::new();
        for chunk in chunks {
            parser.push(chunk);
            while let Some(item) = parser.next_command() {
                out.push(item);
            }
        }
        out
    }

    fn feed_all(input: &[u8]) -> Vec<Result<Command, CommandError>> {
        feed(&mut CommandParser::default(), [input])
    }

    fn encoded(command: &Command) -> Vec<u8> {
        let mut out = Vec::new();
        command.encode(&mut out).unwrap();
        out
    }

    // spec: §3.2 — verbs and parameter symbols are case-insensitive.
    #[test]
    fn verbs_and_parameters_are_case_insensitive() {
        assert_eq!(parse(b"retr a.txt"), Ok(Command::Retr(b"a.txt".to_vec())));
        assert_eq!(parse(b"ReTr a.txt"), Ok(Command::Retr(b"a.txt".to_vec())));
        assert_eq!(parse(b"type i"), Ok(Command::Type(TransferType::Image)));
        assert_eq!(
            parse(b"type a t"),
            Ok(Command::Type(TransferType::Ascii(FormatControl::Telnet)))
        );
        assert_eq!(
            parse(b"type l 8"),
            Ok(Command::Type(TransferType::Local(8)))
        );
        assert_eq!(parse(b"stru r"), Ok(Command::Stru(FileStructure::Record)));
        assert_eq!(parse(b"mode b"), Ok(Command::Mode(TransferMode::Block)));
        assert_eq!(
            parse(b"prot p"),
            Ok(Command::Prot(ProtectionLevel::Private))
        );
        assert_eq!(
            parse(b"allo 100 r 10"),
            Ok(Command::Allo {
                size: 100,
                record_size: Some(10)
            })
        );
        // The AUTH mechanism is kept as sent; the server compares it case-insensitively.
        assert_eq!(parse(b"auth Tls"), Ok(Command::Auth(b"Tls".to_vec())));
    }

    // spec: §3.2 — RFC 1123 §4.1.3.1 X-verbs.
    #[test]
    fn x_verbs_are_synonyms() {
        assert_eq!(parse(b"XMKD d"), Ok(Command::Mkd(b"d".to_vec())));
        assert_eq!(parse(b"xrmd d"), Ok(Command::Rmd(b"d".to_vec())));
        assert_eq!(parse(b"XPWD"), Ok(Command::Pwd));
        assert_eq!(parse(b"XCUP"), Ok(Command::Cdup));
        assert_eq!(parse(b"XCWD d"), Ok(Command::Cwd(b"d".to_vec())));
        // Canonical form on the way out.
        assert_eq!(encoded(&parse(b"XMKD d").unwrap()), b"MKD d\r\n");
    }

    // spec: §3.2 — exactly one SP separates verb and argument (RFC 2640 §3.1).
    #[test]
    fn spaces_belong_to_the_pathname() {
        assert_eq!(parse(b"RETR  a b "), Ok(Command::Retr(b" a b ".to_vec())));
        assert_eq!(parse(b"CWD  "), Ok(Command::Cwd(b" ".to_vec())));
        assert_eq!(parse(b"LIST"), Ok(Command::List(None)));
        assert_eq!(parse(b"LIST "), Ok(Command::List(None)));
        assert_eq!(parse(b"NOOP "), Ok(Command::Noop));
        assert_eq!(encoded(&Command::Stor(b" x ".to_vec())), b"STOR  x \r\n");
        // Typed arguments get no such latitude.
        assert_eq!(
            parse(b"TYPE  I"),
            Err(CommandError::InvalidArgument { verb: Verb::Type })
        );
    }

    // spec: §3.2 — CR NUL in a pathname means CR (RFC 2640 §3.1).
    #[test]
    fn cr_nul_is_decoded() {
        assert_eq!(parse(b"DELE a\r\0b"), Ok(Command::Dele(b"a\rb".to_vec())));
        assert_eq!(parse(b"DELE \0a"), Ok(Command::Dele(b"\0a".to_vec())));
        // Through the parser, including a CR NUL right before the line end.
        assert_eq!(
            feed_all(b"MKD x\r\0\r\n"),
            vec![Ok(Command::Mkd(b"x\r".to_vec()))]
        );
    }

    #[test]
    fn unknown_verbs_are_preserved() {
        assert_eq!(
            parse(b"LANG fr"),
            Ok(Command::Unknown {
                verb: b"LANG".to_vec(),
                argument: Some(b"fr".to_vec())
            })
        );
        assert_eq!(
            parse(b"xyzzyx"),
            Ok(Command::Unknown {
                verb: b"xyzzyx".to_vec(),
                argument: None
            })
        );
        assert_eq!(parse(b""), Err(CommandError::NoVerb));
        assert_eq!(parse(b" RETR x"), Err(CommandError::NoVerb));
    }

    #[test]
    fn non_utf8_pathnames_are_kept() {
        let name = b"RETR caf\xe9\xff\x80";
        assert_eq!(parse(name), Ok(Command::Retr(b"caf\xe9\xff\x80".to_vec())));
    }

    // spec: §3.2 client safety — passwords never reach a log through Debug.
    #[test]
    fn password_debug_is_redacted() {
        let command = parse(b"PASS hunter2").unwrap();
        let shown = format!("{command:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("104"), "bytes of 'hunter2' leaked: {shown}");
        assert_eq!(shown, "Pass(Password(<redacted>))");
        let Command::Pass(password) = command else {
            panic!("not PASS")
        };
        assert_eq!(password.as_bytes(), b"hunter2");
        // A missing password is an empty one.
        assert_eq!(parse(b"PASS"), Ok(Command::Pass(Password::default())));
        assert_eq!(encoded(&Command::Pass(Password::default())), b"PASS\r\n");
    }

    #[test]
    fn argument_presence_errors_carry_the_verb() {
        assert_eq!(
            parse(b"RETR"),
            Err(CommandError::MissingArgument { verb: Verb::Retr })
        );
        assert_eq!(
            parse(b"USER "),
            Err(CommandError::MissingArgument { verb: Verb::User })
        );
        assert_eq!(
            parse(b"PASV x"),
            Err(CommandError::UnexpectedArgument { verb: Verb::Pasv })
        );
        assert_eq!(
            parse(b"TYPE").unwrap_err().suggested_reply_code(),
            ReplyCode::ARGUMENT_SYNTAX_ERROR
        );
    }

    // spec: F01 — FEAT with an argument gets 501.
    #[test]
    fn feat_takes_no_argument() {
        let error = parse(b"FEAT x").unwrap_err();
        assert_eq!(error, CommandError::UnexpectedArgument { verb: Verb::Feat });
        assert_eq!(
            error.suggested_reply_code(),
            ReplyCode::ARGUMENT_SYNTAX_ERROR
        );
    }

    // spec: S06 — CCC takes no argument.
    #[test]
    fn ccc_takes_no_argument() {
        assert_eq!(parse(b"CCC"), Ok(Command::Ccc));
        assert_eq!(
            parse(b"CCC now"),
            Err(CommandError::UnexpectedArgument { verb: Verb::Ccc })
        );
    }

    // spec: S04 — PBSZ is a 32-bit unsigned decimal; unparseable or larger gets 501.
    #[test]
    fn pbsz_is_32_bit() {
        assert_eq!(parse(b"PBSZ 0"), Ok(Command::Pbsz(0)));
        assert_eq!(parse(b"PBSZ 4294967295"), Ok(Command::Pbsz(u32::MAX)));
        for bad in [
            &b"PBSZ 4294967296"[..],
            b"PBSZ -1",
            b"PBSZ 1k",
            b"PBSZ 99999999999999999999999",
        ] {
            let error = parse(bad).unwrap_err();
            assert_eq!(error, CommandError::InvalidArgument { verb: Verb::Pbsz });
            assert_eq!(
                error.suggested_reply_code(),
                ReplyCode::ARGUMENT_SYNTAX_ERROR
            );
        }
    }

    // spec: S05 — the four PROT levels; an unknown letter is a typed 504 case.
    #[test]
    fn prot_levels() {
        assert_eq!(parse(b"PROT C"), Ok(Command::Prot(ProtectionLevel::Clear)));
        assert_eq!(parse(b"PROT S"), Ok(Command::Prot(ProtectionLevel::Safe)));
        assert_eq!(
            parse(b"PROT E"),
            Ok(Command::Prot(ProtectionLevel::Confidential))
        );
        assert_eq!(
            parse(b"PROT P"),
            Ok(Command::Prot(ProtectionLevel::Private))
        );
        let unknown = parse(b"PROT X").unwrap_err();
        assert_eq!(
            unknown,
            CommandError::UnsupportedParameter { verb: Verb::Prot }
        );
        assert_eq!(
            unknown.suggested_reply_code(),
            ReplyCode::PARAMETER_NOT_IMPLEMENTED
        );
        assert_eq!(
            parse(b"PROT PP"),
            Err(CommandError::InvalidArgument { verb: Verb::Prot })
        );
    }

    // spec: X04 — REST STREAM takes 1*DIGIT.
    #[test]
    fn rest_takes_digits_only() {
        assert_eq!(parse(b"REST 0"), Ok(Command::Rest(0)));
        assert_eq!(
            parse(b"REST 18446744073709551615"),
            Ok(Command::Rest(u64::MAX))
        );
        for bad in [
            &b"REST 18446744073709551616"[..],
            b"REST +1",
            b"REST 1 ",
            b"REST abc",
        ] {
            assert_eq!(
                parse(bad),
                Err(CommandError::InvalidArgument { verb: Verb::Rest })
            );
        }
    }

    #[test]
    fn type_stru_mode_grammar() {
        assert_eq!(
            parse(b"TYPE A"),
            Ok(Command::Type(TransferType::Ascii(FormatControl::NonPrint)))
        );
        assert_eq!(
            parse(b"TYPE E C"),
            Ok(Command::Type(TransferType::Ebcdic(
                FormatControl::CarriageControl
            )))
        );
        assert_eq!(
            parse(b"TYPE L 0"),
            Err(CommandError::InvalidArgument { verb: Verb::Type })
        );
        assert_eq!(
            parse(b"TYPE L 256"),
            Err(CommandError::InvalidArgument { verb: Verb::Type })
        );
        assert_eq!(
            parse(b"TYPE I N"),
            Err(CommandError::InvalidArgument { verb: Verb::Type })
        );
        assert_eq!(
            parse(b"TYPE Q"),
            Err(CommandError::UnsupportedParameter { verb: Verb::Type })
        );
        assert_eq!(
            parse(b"TYPE A X"),
            Err(CommandError::UnsupportedParameter { verb: Verb::Type })
        );
        assert_eq!(
            parse(b"STRU X"),
            Err(CommandError::UnsupportedParameter { verb: Verb::Stru })
        );
        assert_eq!(
            parse(b"MODE 1"),
            Err(CommandError::InvalidArgument { verb: Verb::Mode })
        );
        assert_eq!(
            parse(b"ALLO 5 R"),
            Err(CommandError::InvalidArgument { verb: Verb::Allo })
        );
        assert_eq!(
            encoded(&Command::Type(TransferType::Local(8))),
            b"TYPE L 8\r\n"
        );
        assert_eq!(
            encoded(&Command::Type(TransferType::Ascii(FormatControl::NonPrint))),
            b"TYPE A\r\n"
        );
    }

    // spec: §3.2 — Telnet: IAC IP, IAC DM and negotiations are removed, IAC IAC is 0xFF.
    #[test]
    fn telnet_sequences_are_removed() {
        let wire =
            b"\xff\xf4\xff\xf2ABOR\r\n\xff\xfb\x01RETR a\xff\xffb\xff\xfd\x03\r\nNO\xff\xf1OP\r\n";
        assert_eq!(
            feed_all(wire),
            vec![
                Ok(Command::Abor),
                Ok(Command::Retr(b"a\xffb".to_vec())),
                Ok(Command::Noop),
            ]
        );
    }

    #[test]
    fn telnet_sequences_split_across_chunks() {
        let wire = b"RETR \xff\xffx\xff\xfe\x18y\xff\xf4\r\n";
        let out = feed(&mut CommandParser::default(), wire.chunks(1));
        assert_eq!(out, vec![Ok(Command::Retr(b"\xffxy".to_vec()))]);
        // A lone IAC at the end of a chunk is buffered state.
        let mut parser = CommandParser::default();
        parser.push(b"NOOP\r\n\xff");
        assert_eq!(parser.next_command(), Some(Ok(Command::Noop)));
        assert!(parser.has_buffered_bytes());
        parser.push(b"\xf4");
        assert!(!parser.has_buffered_bytes());
    }

    // spec: §9.1 — bytes pipelined after AUTH TLS are visible to the upgrade check.
    #[test]
    fn bytes_after_auth_tls_are_reported() {
        let mut parser = CommandParser::default();
        parser.push(b"AUTH TLS\r\nUSER x\r\n");
        assert_eq!(
            parser.next_command(),
            Some(Ok(Command::Auth(b"TLS".to_vec())))
        );
        assert!(parser.has_buffered_bytes());
        assert_eq!(parser.buffered_len(), 8);

        let mut clean = CommandParser::default();
        clean.push(b"AUTH TLS\r\n");
        assert!(clean.next_command().is_some());
        assert!(!clean.has_buffered_bytes());
    }

    #[test]
    fn overlong_line_is_one_error_with_its_verb_then_recovery() {
        let mut parser = CommandParser::new(CommandLimits { max_line_len: 32 });
        let mut wire = b"STOR ".to_vec();
        wire.extend_from_slice(&[b'a'; 100]);
        wire.extend_from_slice(b"\r\nNOOP\r\n");
        let out = feed(&mut parser, wire.chunks(7));
        assert_eq!(
            out,
            vec![
                Err(CommandError::LineTooLong {
                    max_line_len: 32,
                    verb: Some(Verb::Stor)
                }),
                Ok(Command::Noop),
            ]
        );
        assert_eq!(
            out[0].as_ref().unwrap_err().suggested_reply_code(),
            ReplyCode::SYNTAX_ERROR
        );

        // While the rest of an over-long line is dropped, the peer's line is unfinished.
        let mut parser = CommandParser::new(CommandLimits { max_line_len: 8 });
        parser.push(b"USER aaaaaaaaaaaa");
        assert!(matches!(
            parser.next_command(),
            Some(Err(CommandError::LineTooLong { .. }))
        ));
        assert_eq!(parser.buffered_len(), 0);
        assert!(parser.has_buffered_bytes());
        parser.push(b"aaa\r\n");
        assert!(!parser.has_buffered_bytes());
    }

    // spec: §3.2 — 0xFF inside an argument is doubled (RFC 3659 §2.2).
    #[test]
    fn encoder_doubles_iac() {
        assert_eq!(
            encoded(&Command::Retr(b"a\xffb\xff".to_vec())),
            b"RETR a\xff\xffb\xff\xff\r\n"
        );
        assert_eq!(
            encoded(&Command::Pass(Password::new(&b"\xff"[..]))),
            b"PASS \xff\xff\r\n"
        );
    }

    // spec: §3.2 client safety — CR/LF in an argument is refused (CRLF injection).
    #[test]
    fn encoder_refuses_line_breaks_and_writes_nothing() {
        let mut out = b"prefix".to_vec();
        let injected = Command::Retr(b"x\r\nDELE y".to_vec());
        assert_eq!(
            injected.encode(&mut out),
            Err(CommandEncodeError::LineBreakInArgument {
                verb: Some(Verb::Retr)
            })
        );
        assert_eq!(
            Command::Pass(Password::new(&b"a\nb"[..])).encode(&mut out),
            Err(CommandEncodeError::LineBreakInArgument {
                verb: Some(Verb::Pass)
            })
        );
        assert_eq!(
            Command::Unknown {
                verb: b"SI TE".to_vec(),
                argument: None
            }
            .encode(&mut out),
            Err(CommandEncodeError::InvalidVerb)
        );
        assert_eq!(
            Command::Cwd(Vec::new()).encode(&mut out),
            Err(CommandEncodeError::MissingArgument { verb: Verb::Cwd })
        );
        assert_eq!(
            Command::Type(TransferType::Local(0)).encode(&mut out),
            Err(CommandEncodeError::InvalidArgument { verb: Verb::Type })
        );
        assert_eq!(out, b"prefix");
    }

    #[test]
    fn every_verb_has_a_distinct_spelling_that_parses_back() {
        for verb in Verb::ALL {
            assert_eq!(Verb::parse(verb.as_str().as_bytes()), Some(verb));
            assert_eq!(
                Verb::parse(verb.as_str().to_ascii_lowercase().as_bytes()),
                Some(verb)
            );
        }
        assert_eq!(Verb::parse(b"RETRR"), None);
        assert_eq!(Verb::parse(b""), None);
    }

    // ---- property tests -------------------------------------------------------------------

    /// Argument bytes: anything but CR and LF, with IAC, NUL and SP made likely.
    fn arg_byte() -> impl Strategy<Value = u8> {
        prop_oneof![
            Just(IAC),
            Just(0u8),
            Just(b' '),
            Just(b'a'),
            any::<u8>().prop_filter("no CR/LF", |b| *b != b'\r' && *b != b'\n'),
        ]
    }

    fn argument() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(arg_byte(), 1..16)
    }

    type ByteArgVariant = fn(Vec<u8>) -> Command;
    type OptionalArgVariant = fn(Option<Vec<u8>>) -> Command;

    fn required_variants() -> Vec<ByteArgVariant> {
        vec![
            Command::User,
            Command::Acct,
            Command::Cwd,
            Command::Smnt,
            Command::Port,
            Command::Retr,
            Command::Stor,
            Command::Appe,
            Command::Rnfr,
            Command::Rnto,
            Command::Dele,
            Command::Rmd,
            Command::Mkd,
            Command::Site,
            Command::Opts,
            Command::Auth,
            Command::Adat,
            Command::Mic,
            Command::Conf,
            Command::Enc,
            Command::Eprt,
            Command::Size,
            Command::Mdtm,
            Command::Host,
        ]
    }

    fn optional_variants() -> Vec<OptionalArgVariant> {
        vec![
            Command::List,
            Command::Nlst,
            Command::Stat,
            Command::Help,
            Command::Epsv,
            Command::Mlst,
            Command::Mlsd,
        ]
    }

    fn no_argument_commands() -> Vec<Command> {
        vec![
            Command::Cdup,
            Command::Quit,
            Command::Rein,
            Command::Pasv,
            Command::Stou,
            Command::Abor,
            Command::Pwd,
            Command::Syst,
            Command::Noop,
            Command::Feat,
            Command::Ccc,
        ]
    }

    fn format_control() -> impl Strategy<Value = FormatControl> {
        select(vec![
            FormatControl::NonPrint,
            FormatControl::Telnet,
            FormatControl::CarriageControl,
        ])
    }

    fn unknown_verb() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(arg_byte().prop_filter("no SP", |b| *b != b' '), 1..8)
            .prop_filter("not a known verb", |verb| Verb::parse(verb).is_none())
    }

    /// Every `Command` variant.
    fn any_command() -> impl Strategy<Value = Command> {
        prop_oneof![
            select(no_argument_commands()),
            (select(required_variants()), argument()).prop_map(|(variant, arg)| variant(arg)),
            (
                select(optional_variants()),
                proptest::option::of(argument())
            )
                .prop_map(|(variant, arg)| variant(arg)),
            proptest::collection::vec(arg_byte(), 0..16)
                .prop_map(|bytes| Command::Pass(Password::new(bytes))),
            prop_oneof![
                format_control().prop_map(TransferType::Ascii),
                format_control().prop_map(TransferType::Ebcdic),
                Just(TransferType::Image),
                (1u8..=255).prop_map(TransferType::Local),
            ]
            .prop_map(Command::Type),
            select(vec![
                FileStructure::File,
                FileStructure::Record,
                FileStructure::Page
            ])
            .prop_map(Command::Stru),
            select(vec![
                TransferMode::Stream,
                TransferMode::Block,
                TransferMode::Compressed
            ])
            .prop_map(Command::Mode),
            select(vec![
                ProtectionLevel::Clear,
                ProtectionLevel::Safe,
                ProtectionLevel::Confidential,
                ProtectionLevel::Private,
            ])
            .prop_map(Command::Prot),
            any::<u64>().prop_map(Command::Rest),
            any::<u32>().prop_map(Command::Pbsz),
            (any::<u64>(), proptest::option::of(any::<u64>()))
                .prop_map(|(size, record_size)| Command::Allo { size, record_size }),
            (unknown_verb(), proptest::option::of(argument()))
                .prop_map(|(verb, argument)| Command::Unknown { verb, argument }),
        ]
    }

    /// An argument with at least one CR or LF somewhere.
    fn injected_argument() -> impl Strategy<Value = Vec<u8>> {
        (
            proptest::collection::vec(arg_byte(), 0..8),
            select(vec![&b"\r"[..], b"\n", b"\r\n"]),
            proptest::collection::vec(arg_byte(), 0..8),
        )
            .prop_map(|(before, brk, after)| [before.as_slice(), brk, &after].concat())
    }

    /// Telnet sequences the server must ignore.
    fn telnet_noise() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            Just(vec![IAC, 244]),
            Just(vec![IAC, 242]),
            Just(vec![IAC, 241]),
            (251u8..=254, any::<u8>()).prop_map(|(negotiation, option)| vec![
                IAC,
                negotiation,
                option
            ]),
        ]
    }

    /// Splits an encoded stream into units that Telnet noise may be inserted between: an
    /// escaped `IAC IAC` pair is one unit.
    fn units(wire: &[u8]) -> Vec<&[u8]> {
        let mut units = Vec::new();
        let mut at = 0;
        while at < wire.len() {
            let len = if wire[at] == IAC { 2 } else { 1 };
            units.push(&wire[at..at + len]);
            at += len;
        }
        units
    }

    fn chunked(input: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        points.sort_unstable();
        let mut chunks = Vec::new();
        let mut last = 0;
        for p in points {
            chunks.push(input[last..p].to_vec());
            last = p;
        }
        chunks.push(input[last..].to_vec());
        chunks
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        // spec: §3.2 — encode → parse is the identity for every variant.
        #[test]
        fn round_trip_every_variant(command in any_command()) {
            let wire = encoded(&command);
            prop_assert!(wire.ends_with(b"\r\n"));
            prop_assert_eq!(feed_all(&wire), vec![Ok(command)]);
        }

        // spec: §3.2 client safety — CRLF injection is refused for every byte-argument variant.
        #[test]
        fn encoder_refuses_cr_lf_everywhere(
            required in select(required_variants()),
            optional in select(optional_variants()),
            arg in injected_argument(),
            verb in unknown_verb(),
        ) {
            let commands = [
                required(arg.clone()),
                optional(Some(arg.clone())),
                Command::Pass(Password::new(arg.clone())),
                Command::Unknown { verb, argument: Some(arg.clone()) },
            ];
            for command in commands {
                let mut out = Vec::new();
                let result = command.encode(&mut out);
                prop_assert_eq!(
                    result,
                    Err(CommandEncodeError::LineBreakInArgument { verb: command.verb() })
                );
                prop_assert!(out.is_empty());
            }
        }

        // Split invariance with Telnet noise, which must not change the commands.
        #[test]
        fn split_invariance_with_telnet_noise(
            commands in proptest::collection::vec(any_command(), 1..6),
            noise in proptest::collection::vec((any::<usize>(), telnet_noise()), 0..8),
            cuts in proptest::collection::vec(any::<usize>(), 0..16),
        ) {
            let mut wire = Vec::new();
            for command in &commands {
                command.encode(&mut wire).unwrap();
            }
            let units = units(&wire);
            let mut inserts: Vec<(usize, Vec<u8>)> = noise
                .into_iter()
                .map(|(at, seq)| (at % (units.len() + 1), seq))
                .collect();
            inserts.sort_by_key(|(at, _)| *at);
            let mut noisy = Vec::new();
            let mut next_insert = inserts.iter().peekable();
            for (index, unit) in units.iter().enumerate() {
                while let Some((_, seq)) = next_insert.next_if(|(at, _)| *at == index) {
                    noisy.extend_from_slice(seq);
                }
                noisy.extend_from_slice(unit);
            }
            for (_, seq) in next_insert {
                noisy.extend_from_slice(seq);
            }

            let expected: Vec<_> = commands.into_iter().map(Ok).collect();
            prop_assert_eq!(&feed_all(&noisy), &expected);
            let chunks = chunked(&noisy, &cuts);
            let mut parser = CommandParser::default();
            prop_assert_eq!(&feed(&mut parser, chunks.iter().map(Vec::as_slice)), &expected);
            prop_assert!(!parser.has_buffered_bytes());
        }

        // Arbitrary bytes (errors included) give the same items in any chunking.
        #[test]
        fn split_invariance_of_arbitrary_bytes(
            input in proptest::collection::vec(
                prop_oneof![
                    Just(&b"\xff"[..]), Just(&b"\xf4"[..]), Just(&b"\xfb"[..]), Just(&b"\r"[..]),
                    Just(&b"\n"[..]), Just(&b"\0"[..]), Just(&b" "[..]), Just(&b"RETR"[..]),
                    Just(&b"type"[..]), Just(&b"PBSZ 1"[..]), Just(&b"i"[..]), Just(&b"xyz"[..]),
                ],
                0..60,
            ).prop_map(|parts| parts.concat()),
            cuts in proptest::collection::vec(any::<usize>(), 0..16),
            max_line_len in 8usize..24,
        ) {
            let limits = CommandLimits { max_line_len };
            let whole = feed(&mut CommandParser::new(limits), [input.as_slice()]);
            let chunks = chunked(&input, &cuts);
            let split = feed(&mut CommandParser::new(limits), chunks.iter().map(Vec::as_slice));
            prop_assert_eq!(whole, split);
        }
    }
}
