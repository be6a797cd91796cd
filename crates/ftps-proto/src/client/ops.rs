//! The commands a client sends and the replies each one allows (RFC 959 §5.4 with the RFC 2228,
//! 2389, 2428, 3659 and 4217 additions; checklist §3.4).

use crate::codec::command::{TransferType, Verb};
use crate::codec::reply::ReplyCode;

/// The command in flight on the control connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sent {
    Greeting,
    Auth,
    Feat,
    User,
    Pass,
    Acct,
    Pbsz,
    Prot,
    OptsUtf8,
    Type(TransferType),
    Epsv,
    Pasv,
    Eprt,
    Port,
    Rest,
    /// RETR, STOR, APPE, STOU, LIST, NLST, MLSD.
    Transfer(Verb),
    /// A command with one final reply.
    Simple(Verb),
    /// A raw command: any final reply is the result.
    Raw,
    Rnfr,
    Rnto,
    Quit,
    Abor,
    /// NOOP sent after an ambiguous ABOR sequence to find the end of the stray replies.
    SyncNoop,
}

/// How a reply relates to the command in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Preliminary reply the command allows.
    Preliminary,
    /// A positive (2yz/3yz) reply the command allows.
    Positive,
    /// 4yz or 5yz.
    Negative,
    /// Anything else: a 1yz, 3yz or 6yz the command cannot have is a protocol error; an
    /// unlisted 2yz fails the operation.
    Unexpected,
}

impl Sent {
    /// The command's name for errors.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Greeting => "connection greeting",
            Self::Auth => "AUTH",
            Self::Feat => "FEAT",
            Self::User => "USER",
            Self::Pass => "PASS",
            Self::Acct => "ACCT",
            Self::Pbsz => "PBSZ",
            Self::Prot => "PROT",
            Self::OptsUtf8 => "OPTS",
            Self::Type(_) => "TYPE",
            Self::Epsv => "EPSV",
            Self::Pasv => "PASV",
            Self::Eprt => "EPRT",
            Self::Port => "PORT",
            Self::Rest => "REST",
            Self::Transfer(verb) | Self::Simple(verb) => verb.as_str(),
            Self::Raw => "raw command",
            Self::Rnfr => "RNFR",
            Self::Rnto => "RNTO",
            Self::Quit => "QUIT",
            Self::Abor => "ABOR",
            Self::SyncNoop => "NOOP",
        }
    }

    /// The positive codes the command allows.
    fn positive(self) -> &'static [u16] {
        match self {
            Self::Greeting => &[220],
            Self::Auth => &[234],
            Self::Feat => &[211],
            // 232: logged in by the security exchange (RFC 2228, RFC 4217 §12.1 note 2).
            Self::User => &[230, 232, 331, 332],
            Self::Pass => &[230, 202, 332],
            Self::Acct => &[230, 202],
            Self::Pbsz | Self::Prot | Self::OptsUtf8 | Self::Type(_) => &[200],
            Self::Epsv => &[229],
            Self::Pasv => &[227],
            Self::Eprt | Self::Port => &[200],
            Self::Rest | Self::Rnfr => &[350],
            Self::Transfer(_) => &[226, 250],
            Self::Rnto => &[250],
            Self::Quit => &[221],
            Self::Abor => &[225, 226],
            Self::SyncNoop => &[200],
            Self::Raw => &[],
            Self::Simple(verb) => match verb {
                Verb::Cwd | Verb::Dele | Verb::Rmd => &[250],
                // Clients must accept 250 as well as 200 for CDUP (checklist §3.4).
                Verb::Cdup => &[200, 250],
                Verb::Mkd | Verb::Pwd => &[257],
                Verb::Syst => &[215],
                Verb::Stat => &[211, 212, 213],
                Verb::Help => &[211, 214],
                Verb::Site => &[200, 202],
                Verb::Noop => &[200],
                Verb::Size | Verb::Mdtm => &[213],
                Verb::Mlst => &[250],
                Verb::Ccc => &[200],
                _ => &[],
            },
        }
    }

    /// Classifies `code` for this command.
    pub(crate) fn verdict(self, code: ReplyCode) -> Verdict {
        let value = code.get();
        if code.is_preliminary() {
            let allowed = match self {
                Self::Greeting => value == 120,
                // 110 restart marker, 125 data connection open, 150 opening.
                Self::Transfer(_) => matches!(value, 110 | 125 | 150),
                _ => false,
            };
            return if allowed {
                Verdict::Preliminary
            } else {
                Verdict::Unexpected
            };
        }
        if value >= 600 {
            return Verdict::Unexpected;
        }
        if code.is_negative() {
            return Verdict::Negative;
        }
        if self == Self::Raw {
            return Verdict::Positive;
        }
        if self.positive().contains(&value) {
            Verdict::Positive
        } else {
            Verdict::Unexpected
        }
    }
}
