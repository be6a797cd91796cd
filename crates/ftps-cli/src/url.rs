//! `ftp://`, `ftpes://` and `ftps://` URLs (RFC 1738 §3.2 syntax, curl's scheme meanings).

use ftps_std::ClientTlsMode;

/// A parsed FTP URL. The path is relative to the login directory, as in curl: `ftp://h/a/b`
/// names `a/b`, `ftp://h//etc/x` names `/etc/x`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FtpUrl {
    /// Explicit (`ftp`, `ftpes`) or implicit (`ftps`) TLS.
    pub(crate) tls_mode: ClientTlsMode,
    /// Host name or IP address (IPv6 without brackets).
    pub(crate) host: String,
    /// The port, when given.
    pub(crate) port: Option<u16>,
    /// User name from the URL, percent-decoded.
    pub(crate) user: Option<String>,
    /// Password from the URL, percent-decoded.
    pub(crate) password: Option<String>,
    /// Percent-decoded path without the one `/` that separates it from the host; empty for
    /// the login directory.
    pub(crate) path: String,
}

impl FtpUrl {
    /// Parses `text`; the error says what is wrong.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| format!("{text:?} is not a URL (expected ftp://host/path)"))?;
        let tls_mode = match scheme.to_ascii_lowercase().as_str() {
            // Plain `ftp://` still requires AUTH TLS: this tool never falls back to clear.
            "ftp" | "ftpes" => ClientTlsMode::Explicit,
            "ftps" => ClientTlsMode::Implicit,
            other => {
                return Err(format!(
                    "unsupported URL scheme {other:?} (use ftp, ftpes or ftps)"
                ));
            }
        };
        let (authority, raw_path) = match rest.find('/') {
            Some(slash) => (&rest[..slash], &rest[slash + 1..]),
            None => (rest, ""),
        };
        // A user name or password may contain '@' only percent-encoded; the last '@' ends them.
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(info) => match info.split_once(':') {
                Some((user, password)) => (Some(decode(user)?), Some(decode(password)?)),
                None => (Some(decode(info)?), None),
            },
        };
        let (host, port) = split_host_port(hostport)?;
        if host.is_empty() {
            return Err(format!("no host in {text:?}"));
        }
        // `;type=i` and similar are not supported; `?` and `#` have no meaning for FTP.
        let path = decode(raw_path)?;
        if path.contains(['\r', '\n']) {
            return Err("the path contains a line break".into());
        }
        Ok(Self {
            tls_mode,
            host,
            port,
            user: user.filter(|u| !u.is_empty()),
            password,
            path,
        })
    }

    /// The path, or `None` for the login directory.
    pub(crate) fn path_or_none(&self) -> Option<&str> {
        let path = self.path.as_str();
        (!path.is_empty()).then_some(path)
    }

    /// The last component of the path (`a/b/` → `b`).
    pub(crate) fn file_name(&self) -> Option<&str> {
        self.path
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .filter(|n| !n.is_empty())
    }
}

fn split_host_port(hostport: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(bracketed) = hostport.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| format!("unclosed '[' in host {hostport:?}"))?;
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(format!("junk after ']' in host {hostport:?}")),
            },
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        }
    };
    let port = match port {
        None | Some("") => None,
        Some(port) => Some(
            port.parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| format!("invalid port {port:?}"))?,
        ),
    };
    Ok((host.to_owned(), port))
}

/// Percent-decoding (RFC 3986 §2.1); the result must be UTF-8 because paths are handed on as
/// strings.
pub(crate) fn decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent escape in {text:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{text:?} does not decode to UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_choose_tls_mode() {
        assert_eq!(
            FtpUrl::parse("ftp://h/").unwrap().tls_mode,
            ClientTlsMode::Explicit
        );
        assert_eq!(
            FtpUrl::parse("ftpes://h/").unwrap().tls_mode,
            ClientTlsMode::Explicit
        );
        assert_eq!(
            FtpUrl::parse("FTPS://h").unwrap().tls_mode,
            ClientTlsMode::Implicit
        );
        assert!(FtpUrl::parse("http://h/").is_err());
        assert!(FtpUrl::parse("h/x").is_err());
    }

    #[test]
    fn user_password_host_port_path() {
        let url = FtpUrl::parse("ftp://bob:p%40ss%3Aw@example.org:2121/dir/a%20b.txt").unwrap();
        assert_eq!(url.user.as_deref(), Some("bob"));
        assert_eq!(url.password.as_deref(), Some("p@ss:w"));
        assert_eq!(url.host, "example.org");
        assert_eq!(url.port, Some(2121));
        assert_eq!(url.path, "dir/a b.txt");
        assert_eq!(url.file_name(), Some("a b.txt"));
    }

    #[test]
    fn ipv6_and_defaults() {
        let url = FtpUrl::parse("ftps://[::1]:990").unwrap();
        assert_eq!((url.host.as_str(), url.port), ("::1", Some(990)));
        assert_eq!(url.path_or_none(), None);
        let url = FtpUrl::parse("ftp://u@[::1]//abs/x/").unwrap();
        assert_eq!(url.user.as_deref(), Some("u"));
        assert_eq!(url.password, None);
        assert_eq!(url.port, None);
        assert_eq!(url.path, "/abs/x/");
        assert_eq!(url.file_name(), Some("x"));
    }

    #[test]
    fn malformed_urls_are_refused() {
        for bad in [
            "ftp://h:0/",
            "ftp://h:99999/",
            "ftp://h:x/",
            "ftp:///p",
            "ftp://[::1/",
            "ftp://h/%zz",
            "ftp://h/a%0d%0aDELE%20x",
            "ftp://h/%ff",
        ] {
            assert!(FtpUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
