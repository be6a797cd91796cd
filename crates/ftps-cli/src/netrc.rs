//! A small `.netrc` reader (the format of ftp(1) and curl): `machine NAME login USER password
//! PASS`, a `default` entry, `macdef` blocks skipped. Tokens are separated by whitespace;
//! a double-quoted token may hold spaces (`\"` and `\\` escapes), as curl accepts.

/// Login name and password for one machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NetrcEntry {
    /// `login`.
    pub(crate) login: Option<String>,
    /// `password`.
    pub(crate) password: Option<String>,
}

/// The entry for `host`: the first `machine host` entry, else the `default` entry.
pub(crate) fn lookup(text: &str, host: &str) -> Option<NetrcEntry> {
    let tokens = tokenize(text);
    let mut fallback = None;
    let mut i = 0;
    while i < tokens.len() {
        let (matches, is_default) = match tokens[i].as_str() {
            "machine" => {
                i += 1;
                (
                    tokens.get(i).is_some_and(|m| m.eq_ignore_ascii_case(host)),
                    false,
                )
            }
            "default" => (false, true),
            "macdef" => {
                // The macro body runs to the next empty line; tokenize() marks it.
                while i < tokens.len() && tokens[i] != "\n\n" {
                    i += 1;
                }
                i += 1;
                continue;
            }
            _ => {
                i += 1;
                continue;
            }
        };
        i += 1;
        let mut entry = NetrcEntry {
            login: None,
            password: None,
        };
        while i < tokens.len() && !matches!(tokens[i].as_str(), "machine" | "default" | "macdef") {
            match tokens[i].as_str() {
                "login" => entry.login = tokens.get(i + 1).cloned(),
                "password" => entry.password = tokens.get(i + 1).cloned(),
                "account" => {}
                _ => {
                    i += 1;
                    continue;
                }
            }
            i += 2;
        }
        if matches {
            return Some(entry);
        }
        if is_default && fallback.is_none() {
            fallback = Some(entry);
        }
    }
    fallback
}

/// Splits into tokens; an empty line becomes the token `"\n\n"` (the end of a `macdef`).
fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            tokens.push("\n\n".to_owned());
            continue;
        }
        let mut chars = line.chars().peekable();
        loop {
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            let Some(&first) = chars.peek() else { break };
            if first == '#' && tokens.last().is_none_or(|t| t != "password") {
                break; // a comment to the end of the line
            }
            let mut token = String::new();
            if first == '"' {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => token.extend(chars.next()),
                        c => token.push(c),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() {
                        break;
                    }
                    token.push(c);
                    chars.next();
                }
            }
            tokens.push(token);
        }
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "# my hosts\n\
        machine a.example login alice password \"s3 cret\"\n\
        macdef init\n\
        cd /pub\n\
        binary\n\
        \n\
        machine b.example\n  login bob\n  password #hash\n\
        default login anonymous password guest@\n";

    #[test]
    fn finds_machine_entries() {
        assert_eq!(
            lookup(SAMPLE, "a.example"),
            Some(NetrcEntry {
                login: Some("alice".into()),
                password: Some("s3 cret".into())
            })
        );
        let b = lookup(SAMPLE, "B.EXAMPLE").unwrap();
        assert_eq!(b.login.as_deref(), Some("bob"));
        assert_eq!(b.password.as_deref(), Some("#hash"));
    }

    #[test]
    fn default_entry_and_no_match() {
        assert_eq!(
            lookup(SAMPLE, "other").and_then(|e| e.login),
            Some("anonymous".into())
        );
        assert_eq!(lookup("machine x login y", "z"), None);
        assert_eq!(lookup("", "z"), None);
    }

    #[test]
    fn macro_bodies_are_not_entries() {
        // "machine" inside a macro body must not be read as an entry.
        let text = "macdef m\nmachine evil login e password e\n\nmachine ok login o\n";
        assert_eq!(lookup(text, "evil"), None);
        assert_eq!(lookup(text, "ok").and_then(|e| e.login), Some("o".into()));
    }
}
