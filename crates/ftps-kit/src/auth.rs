//! Who may log in: the [`Auth`] trait and a user table of argon2 password hashes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex, OnceLock};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};

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
        let matches = verify_with_reused_memory(attempt.password, &hash);
        matches && known
    }
}

thread_local! {
    /// argon2's working memory (19 MiB with the default parameters), kept by each thread that
    /// verifies passwords and reused for its next check. Allocated per check, it stayed in
    /// the thread's allocator arena anyway, and fragmentation made the arena grow by the full
    /// amount on several checks in a row (measured: about 19 MiB per login for the first
    /// eight logins); owned here it exists exactly once per verifying thread — the
    /// [`LoginPool`]'s few threads.
    static ARGON2_MEMORY: std::cell::RefCell<Vec<argon2::Block>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Verifies `password` against the argon2 PHC `hash` in this thread's reused working memory.
fn verify_with_reused_memory(password: &[u8], hash: &PasswordHash<'_>) -> bool {
    let (Ok(algorithm), Ok(params)) = (
        argon2::Algorithm::try_from(hash.algorithm),
        argon2::Params::try_from(hash),
    ) else {
        return false;
    };
    let version = match hash.version.map(argon2::Version::try_from) {
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
        None => argon2::Version::default(),
    };
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return false;
    };
    let mut salt_buffer = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buffer) else {
        return false;
    };
    let expected = expected.as_bytes();
    let mut output = vec![0u8; expected.len()];
    let blocks = params.block_count();
    let argon = Argon2::new(algorithm, version, params);
    let hashed = ARGON2_MEMORY.with(|memory| {
        let mut memory = memory.borrow_mut();
        if memory.len() < blocks {
            memory.resize(blocks, argon2::Block::default());
        }
        argon.hash_password_into_with_memory(password, salt, &mut output, &mut memory[..blocks])
    });
    // Compared in constant time: every byte is looked at whatever differs.
    let differences = output
        .iter()
        .zip(expected)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    hashed.is_ok() && differences == 0 && output.len() == expected.len()
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

/// A login to verify off the session's thread or task: what [`LoginAttempt`] borrows,
/// owned. The password is overwritten with zeros when the job is dropped.
pub struct LoginJob {
    /// The user name, as sent.
    pub user: Vec<u8>,
    /// The password, as sent.
    pub password: Vec<u8>,
    /// The client's TLS certificate (DER), if any.
    pub client_certificate: Option<Vec<u8>>,
    /// The control connection's peer.
    pub peer: SocketAddr,
}

impl std::fmt::Debug for LoginJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.attempt().fmt(f)
    }
}

impl LoginJob {
    fn attempt(&self) -> LoginAttempt<'_> {
        LoginAttempt {
            user: &self.user,
            password: &self.password,
            client_certificate: self.client_certificate.as_deref(),
            peer: self.peer,
        }
    }
}

impl Drop for LoginJob {
    fn drop(&mut self) {
        // Not a guarantee (copies may exist elsewhere), but the job's own copy does not
        // linger in freed memory.
        self.password.iter_mut().for_each(|b| *b = 0);
    }
}

/// How much lower than the server's the login verifiers' CPU priority is (a nice value:
/// under contention a nice-10 thread gets about a tenth of a nice-0 thread's share).
pub const LOGIN_NICENESS: i32 = 10;

/// Lowers the calling thread's CPU priority by [`LOGIN_NICENESS`] (Linux: the nice value is
/// per thread, and `setpriority(PRIO_PROCESS, 0)` sets the caller's). A refusal (a seccomp
/// filter, another OS) leaves it as it was: only fairness is lost.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        let current = rustix::process::getpriority_process(None).unwrap_or(0);
        let _ = rustix::process::setpriority_process(None, current + LOGIN_NICENESS);
    }
}

/// Called with the verdict, on a pool thread.
pub type LoginDone = Box<dyn FnOnce(bool) + Send>;

/// The login queue is full: the login is refused without a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the login queue is full")]
pub struct LoginQueueFull;

/// A small fixed pool of threads that verify logins with an [`Auth`]. Password hashing is
/// expensive on purpose (argon2: 19 MiB of working memory, tens of milliseconds): verified on
/// every session's own thread, each thread's allocator keeps that memory (glibc arenas), and a
/// flood of logins takes every core from the transfers. On the pool, the working memory
/// exists at most once per pool thread, logins wait in a bounded queue, and the verifiers run
/// at a lower CPU priority ([`LOGIN_NICENESS`]): they use every core the sessions leave idle,
/// and a login flood cannot take the CPU from running transfers and handshakes.
pub struct LoginPool {
    queue: SyncSender<(LoginJob, LoginDone)>,
}

impl std::fmt::Debug for LoginPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginPool").finish_non_exhaustive()
    }
}

impl LoginPool {
    /// Starts `threads` verifier threads (at least one) over `auth`, with room for `queue`
    /// waiting logins. The threads end when the pool is dropped and the queue is empty.
    pub fn new(auth: Arc<dyn Auth>, threads: usize, queue: usize) -> std::io::Result<Self> {
        let (sender, receiver) = std::sync::mpsc::sync_channel::<(LoginJob, LoginDone)>(queue);
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 0..threads.max(1) {
            let receiver = Arc::clone(&receiver);
            let auth = Arc::clone(&auth);
            std::thread::Builder::new()
                .name(format!("ftps-login-{index}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        // One thread waits on the queue at a time; the others wait for the
                        // lock. The guard is dropped before the check runs.
                        let next = receiver
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .recv();
                        let Ok((job, done)) = next else {
                            return;
                        };
                        let granted = auth.authenticate(&job.attempt());
                        drop(job);
                        done(granted);
                    }
                })?;
        }
        Ok(Self { queue: sender })
    }

    /// Queues `job`; `done` is called with the verdict on a pool thread. Fails at once when
    /// the queue is full.
    pub fn submit(&self, job: LoginJob, done: LoginDone) -> Result<(), LoginQueueFull> {
        self.queue.try_send((job, done)).map_err(|_| LoginQueueFull)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accepts one password, after a pause (a stand-in for argon2's cost).
    struct Slow;

    impl Auth for Slow {
        fn authenticate(&self, attempt: &LoginAttempt<'_>) -> bool {
            std::thread::sleep(std::time::Duration::from_millis(20));
            attempt.password == b"right"
        }
    }

    fn verdict(pool: &LoginPool, password: &[u8]) -> bool {
        let (tx, rx) = std::sync::mpsc::channel();
        let job = LoginJob {
            user: b"alice".to_vec(),
            password: password.to_vec(),
            client_certificate: None,
            peer: "127.0.0.1:1".parse().unwrap(),
        };
        pool.submit(job, Box::new(move |granted| tx.send(granted).unwrap()))
            .unwrap();
        rx.recv().unwrap()
    }

    #[test]
    fn the_pool_gives_verdicts_and_its_threads_run_at_a_lower_priority() {
        let pool = LoginPool::new(Arc::new(Slow), 2, 8).unwrap();
        assert!(verdict(&pool, b"right"));
        assert!(!verdict(&pool, b"wrong"));
        #[cfg(target_os = "linux")]
        {
            // Every verifier thread's nice value (field 19 of its stat) is this process's
            // plus LOGIN_NICENESS.
            let own = rustix::process::getpriority_process(None).unwrap();
            let mut verifiers = 0;
            for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
                let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
                if !stat.contains("(ftps-login-") {
                    continue;
                }
                let after = stat.rsplit_once(')').unwrap().1;
                let nice: i32 = after.split_whitespace().nth(16).unwrap().parse().unwrap();
                assert_eq!(nice, (own + LOGIN_NICENESS).min(19), "{stat}");
                verifiers += 1;
            }
            assert!(verifiers >= 2, "{verifiers} verifier threads seen");
        }
    }
}
