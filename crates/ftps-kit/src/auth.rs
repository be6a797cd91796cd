//! Who may log in: the [`Auth`] trait and a user table of argon2 password hashes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// One login attempt, as the session reported it. The password is only borrowed for the
/// check; `Debug` never shows it.
pub struct LoginAttempt<'a> {
    /// The user name, as sent (bytes; not necessarily UTF-8).
    pub user: &'a [u8],
    /// The password, as sent.
    pub password: &'a [u8],
    /// The client's TLS certificate (DER, end-entity) on the control connection, if any.
    pub client_certificate: Option<&'a [u8]>,
    /// The control connection's peer.
    pub peer: SocketAddr,
}

impl std::fmt::Debug for LoginAttempt<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginAttempt")
            .field("user", &String::from_utf8_lossy(self.user))
            .field("password", &"<redacted>")
            .field(
                "client_certificate",
                &self.client_certificate.map(<[u8]>::len),
            )
            .field("peer", &self.peer)
            .finish()
    }
}

/// Decides logins. Called from session threads, so it must be `Send + Sync`.
pub trait Auth: Send + Sync {
    /// Whether `attempt` may log in.
    fn authenticate(&self, attempt: &LoginAttempt<'_>) -> bool;
}

/// A user table of argon2 password hashes (PHC strings, `$argon2id$v=19$...`). Plaintext
/// passwords are never stored. Anonymous access (`anonymous` or `ftp` with any password) is
/// off unless [`allow_anonymous`](Self::allow_anonymous) is called.
#[derive(Debug, Default, Clone)]
pub struct UserTable {
    users: HashMap<Vec<u8>, String>,
    anonymous: bool,
}

/// A password hash that is not a valid PHC string.
#[derive(Debug, thiserror::Error)]
#[error("not a valid password hash (PHC string expected): {0}")]
pub struct InvalidHash(String);

impl UserTable {
    /// An empty table: nobody can log in.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) `user` with an argon2 PHC hash (see [`hash_password`]).
    pub fn add_user(&mut self, user: &str, phc_hash: &str) -> Result<(), InvalidHash> {
        PasswordHash::new(phc_hash).map_err(|e| InvalidHash(e.to_string()))?;
        self.users
            .insert(user.as_bytes().to_vec(), phc_hash.to_owned());
        Ok(())
    }

    /// Lets `anonymous` and `ftp` log in with any password.
    pub fn allow_anonymous(&mut self, allowed: bool) {
        self.anonymous = allowed;
    }
}

/// A hash verified for unknown users, so a wrong user name costs as much time as a wrong
/// password (no user enumeration by timing).
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_password("no such user").unwrap_or_default())
}

impl Auth for UserTable {
    fn authenticate(&self, attempt: &LoginAttempt<'_>) -> bool {
        if self.anonymous && (attempt.user == b"anonymous" || attempt.user == b"ftp") {
            return true;
        }
        let (stored, known) = match self.users.get(attempt.user) {
            Some(hash) => (hash.as_str(), true),
            None => (dummy_hash(), false),
        };
        let Ok(hash) = PasswordHash::new(stored) else {
            return false;
        };
        let matches = Argon2::default()
            .verify_password(attempt.password, &hash)
            .is_ok();
        matches && known
    }
}

/// Hashes `password` with argon2id (default parameters) and a random salt, as a PHC string
/// for [`UserTable::add_user`] or a configuration file.
pub fn hash_password(password: &str) -> Result<String, InvalidHash> {
    let mut salt = [0u8; 16];
    ftps_proto::tls::crypto_provider()
        .secure_random
        .fill(&mut salt)
        .map_err(|_| InvalidHash("no randomness for the salt".to_owned()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| InvalidHash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| InvalidHash(e.to_string()))
}
