//! Informational commands: FEAT, OPTS, STAT.

use alloc::vec;
use alloc::vec::Vec;

use super::{MLST_FACTS, ServerSession, code};
use crate::codec::listing::parse_opts_mlst_facts;
use crate::codec::reply::Reply;

impl ServerSession {
    pub(super) fn feat(&mut self) {
        let mut lines: Vec<Vec<u8>> = vec![b"Features:".to_vec()];
        let mut feature = |text: &[u8]| {
            let mut line = vec![b' '];
            line.extend_from_slice(text);
            lines.push(line);
        };
        if self.tls_config.is_some() {
            feature(b"AUTH TLS");
            feature(b"PBSZ");
            feature(b"PROT");
            if self.config.allow_ccc {
                feature(b"CCC");
            }
        }
        feature(b"EPRT");
        feature(b"EPSV");
        feature(b"MDTM");
        feature(b"SIZE");
        feature(b"REST STREAM");
        let mut mlst = b"MLST ".to_vec();
        for fact in MLST_FACTS {
            mlst.extend_from_slice(fact);
            if self
                .mlst_selected
                .iter()
                .any(|s| s.eq_ignore_ascii_case(fact))
            {
                mlst.push(b'*');
            }
            mlst.push(b';');
        }
        feature(&mlst);
        if self.config.tvfs {
            feature(b"TVFS");
        }
        feature(b"UTF8");
        feature(b"HOST");
        lines.push(b"End".to_vec());
        self.send_reply(&Reply::multiline(code(211), lines));
    }

    pub(super) fn opts(&mut self, argument: &[u8]) {
        let (name, rest) = match argument.iter().position(|&b| b == b' ') {
            Some(sp) => (&argument[..sp], &argument[sp + 1..]),
            None => (argument, &[][..]),
        };
        if name.eq_ignore_ascii_case(b"UTF8") && rest.eq_ignore_ascii_case(b"ON") {
            self.reply(200, b"Always in UTF8 mode.");
        } else if name.eq_ignore_ascii_case(b"MLST") {
            match parse_opts_mlst_facts(rest) {
                Ok(facts) => {
                    // Unknown facts are dropped silently (RFC 3659 §7.9).
                    self.mlst_selected = MLST_FACTS
                        .iter()
                        .filter(|known| facts.iter().any(|f| f.eq_ignore_ascii_case(known)))
                        .map(|f| f.to_vec())
                        .collect();
                    let mut text = b"MLST OPTS ".to_vec();
                    for fact in &self.mlst_selected {
                        text.extend_from_slice(fact);
                        text.push(b';');
                    }
                    self.reply(200, &text);
                }
                Err(_) => self.reply(501, b"Invalid MLST fact list."),
            }
        } else {
            self.reply(501, b"Option not understood.");
        }
    }

    pub(super) fn stat(&mut self) {
        let mut lines = vec![b"FTPS server status:".to_vec()];
        lines.push(if self.control_tls.is_some() {
            b" Control connection protected by TLS".to_vec()
        } else {
            b" Control connection in clear".to_vec()
        });
        lines.push(if self.logged_in {
            b" Logged in".to_vec()
        } else {
            b" Not logged in".to_vec()
        });
        lines.push(if self.data_private {
            b" Data protection: private".to_vec()
        } else {
            b" Data protection: clear".to_vec()
        });
        lines.push(if self.ascii {
            b" TYPE: ASCII".to_vec()
        } else {
            b" TYPE: BINARY".to_vec()
        });
        lines.push(b"End of status".to_vec());
        self.send_reply(&Reply::multiline(code(211), lines));
    }
}
