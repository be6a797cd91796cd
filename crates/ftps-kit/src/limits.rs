//! What a server admits: sessions in total and per client address, and data connections in
//! total ([`SessionLimits`], counted by [`Admission`]). Every driver asks the same
//! [`Admission`] before it starts a session or opens a data connection, so the blocking and
//! the async server enforce the same numbers; a refused session is answered `421` by the core
//! ([`ServerSession::refused`](ftps_proto::server::ServerSession::refused)).

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ftps_proto::io::DataId;
use ftps_proto::server::Termination;

use crate::log::{SessionEvent, SessionLog};

/// A server's admission limits and the size of its login pool. The defaults follow vsftpd's
/// (`max_clients=2000`, `max_per_ip=50`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// Sessions at the same time, over all clients; more are refused with `421`.
    pub max_sessions: usize,
    /// Sessions at the same time from one client address (IPv4-mapped IPv6 addresses count
    /// as IPv4); more are refused with `421`.
    pub max_sessions_per_ip: usize,
    /// Data connections (passive listeners and connections, active connections) open at the
    /// same time, over all sessions; a transfer beyond it fails with `425`.
    pub max_data_connections: usize,
    /// Threads that verify passwords (argon2 needs 19 MiB and tens of milliseconds of CPU per
    /// check); a flood of logins waits for them. They run at a lower CPU priority, so one per
    /// core uses the idle cores without taking CPU from transfers.
    pub login_threads: usize,
    /// Logins waiting for a verifier; beyond it a login is refused (`530`).
    pub login_queue: usize,
    /// On shutdown, how long running transfers may go on before their sessions are closed
    /// with `421` (idle sessions are closed at once).
    pub shutdown_grace: Duration,
}

impl Default for SessionLimits {
    /// 2000 sessions, 50 per address, 2000 data connections, one login thread per core (at
    /// most 4), 256 queued logins, 10 s shutdown grace.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self {
            max_sessions: 2000,
            max_sessions_per_ip: 50,
            max_data_connections: 2000,
            login_threads: cores.clamp(1, 4),
            login_queue: 256,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Why a session was not admitted, with the limit, for its log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotAdmitted {
    /// What the client is told (the `421` text).
    pub reason: Termination,
    /// The limit that was reached.
    pub limit: usize,
}

impl fmt::Display for NotAdmitted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "refused with 421: {} (limit {})",
            self.reason, self.limit
        )
    }
}

#[derive(Debug, Default)]
struct Counts {
    sessions: usize,
    per_ip: HashMap<IpAddr, usize>,
    data: usize,
}

/// The counters of one server, shared by its sessions.
#[derive(Debug)]
pub struct Admission {
    limits: SessionLimits,
    counts: Mutex<Counts>,
}

impl Admission {
    /// Counters for `limits`, all zero.
    pub fn new(limits: SessionLimits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            counts: Mutex::new(Counts::default()),
        })
    }

    /// The limits counted against.
    pub fn limits(&self) -> &SessionLimits {
        &self.limits
    }

    fn counts(&self) -> MutexGuard<'_, Counts> {
        // The counters stay consistent even if a holder panicked: every update is one step.
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Admits a session from `peer`, or says which limit refuses it. The session counts until
    /// the permit is dropped.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<SessionPermit, NotAdmitted> {
        let ip = peer.to_canonical();
        let mut counts = self.counts();
        if counts.sessions >= self.limits.max_sessions {
            return Err(NotAdmitted {
                reason: Termination::TooManySessions,
                limit: self.limits.max_sessions,
            });
        }
        let from_ip = counts.per_ip.get(&ip).copied().unwrap_or(0);
        if from_ip >= self.limits.max_sessions_per_ip {
            return Err(NotAdmitted {
                reason: Termination::TooManyFromAddress,
                limit: self.limits.max_sessions_per_ip,
            });
        }
        counts.sessions += 1;
        counts.per_ip.insert(ip, from_ip + 1);
        Ok(SessionPermit {
            admission: Arc::clone(self),
            ip,
        })
    }

    /// Sessions admitted and not yet ended.
    pub fn sessions(&self) -> usize {
        self.counts().sessions
    }

    /// Data connections open now.
    pub fn data_connections(&self) -> usize {
        self.counts().data
    }

    fn take_data(&self) -> bool {
        let mut counts = self.counts();
        if counts.data >= self.limits.max_data_connections {
            return false;
        }
        counts.data += 1;
        true
    }

    fn release_data(&self, n: usize) {
        let mut counts = self.counts();
        counts.data = counts.data.saturating_sub(n);
    }
}

/// One admitted session; dropping it frees its place.
#[derive(Debug)]
pub struct SessionPermit {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl SessionPermit {
    /// The data-connection places of this session (counted against the server's total); a
    /// refusal is logged to `log` as session `number` with `peer`.
    pub fn data_permits(
        &self,
        log: Option<Arc<dyn SessionLog>>,
        number: u64,
        peer: SocketAddr,
    ) -> DataPermits {
        DataPermits {
            admission: Some(Arc::clone(&self.admission)),
            held: Vec::new(),
            log: log.map(|log| (log, number, peer)),
        }
    }
}

impl Drop for SessionPermit {
    fn drop(&mut self) {
        let mut counts = self.admission.counts();
        counts.sessions = counts.sessions.saturating_sub(1);
        if let Some(n) = counts.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.per_ip.remove(&self.ip);
            }
        }
    }
}

/// The data channels of one session that hold a place among the server's data connections.
/// A driver takes a place before it listens or connects for a data channel and gives it back
/// when the session closes the channel; a client's driver (no limit) uses
/// [`unlimited`](Self::unlimited).
#[derive(Default)]
pub struct DataPermits {
    admission: Option<Arc<Admission>>,
    held: Vec<DataId>,
    /// Where a refusal is logged: the log, the session's number and peer.
    log: Option<(Arc<dyn SessionLog>, u64, SocketAddr)>,
}

impl fmt::Debug for DataPermits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataPermits")
            .field("held", &self.held)
            .finish_non_exhaustive()
    }
}

impl DataPermits {
    /// No limit (clients).
    pub fn unlimited() -> Self {
        Self::default()
    }

    /// Takes a place for `data` (a channel that already has one keeps it); false when the
    /// server is at its limit: the driver reports the listen or connect as failed.
    pub fn acquire(&mut self, data: DataId) -> bool {
        let Some(admission) = &self.admission else {
            return true;
        };
        if self.held.contains(&data) {
            return true;
        }
        if !admission.take_data() {
            if let Some((log, number, peer)) = &self.log {
                let limit = admission.limits.max_data_connections;
                let reason = format!("data connection refused: {limit} open (the limit)");
                log.event(*number, *peer, &SessionEvent::Refused { reason });
            }
            return false;
        }
        self.held.push(data);
        true
    }

    /// Gives back the place of `data`, if it holds one.
    pub fn release(&mut self, data: DataId) {
        if let Some(index) = self.held.iter().position(|d| *d == data) {
            self.held.swap_remove(index);
            if let Some(admission) = &self.admission {
                admission.release_data(1);
            }
        }
    }
}

impl Drop for DataPermits {
    fn drop(&mut self) {
        if let Some(admission) = &self.admission {
            admission.release_data(self.held.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(total: usize, per_ip: usize, data: usize) -> SessionLimits {
        SessionLimits {
            max_sessions: total,
            max_sessions_per_ip: per_ip,
            max_data_connections: data,
            ..SessionLimits::default()
        }
    }

    #[test]
    fn per_ip_and_total_limits_refuse_and_recover() {
        let admission = Admission::new(limits(3, 2, 10));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = admission.admit(a).unwrap();
        // An IPv4-mapped address is the same client.
        let a2 = admission.admit("::ffff:10.0.0.1".parse().unwrap()).unwrap();
        let refused = admission.admit(a).unwrap_err();
        assert_eq!(refused.reason, Termination::TooManyFromAddress);
        assert_eq!(refused.limit, 2);
        let _b1 = admission.admit(b).unwrap();
        assert_eq!(
            admission.admit(b).unwrap_err().reason,
            Termination::TooManySessions
        );
        drop(a1);
        let _a3 = admission.admit(a).unwrap();
        drop(a2);
        assert_eq!(admission.sessions(), 2);
        assert_eq!(
            refused.to_string(),
            "refused with 421: too many sessions from this address (limit 2)"
        );
    }

    #[test]
    fn data_places_are_counted_over_sessions_and_given_back() {
        let admission = Admission::new(limits(10, 10, 2));
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let s1 = admission.admit(ip).unwrap();
        let s2 = admission.admit(ip).unwrap();
        let peer = "127.0.0.1:1".parse().unwrap();
        let mut d1 = s1.data_permits(None, 1, peer);
        let mut d2 = s2.data_permits(None, 2, peer);
        assert!(d1.acquire(DataId::from_raw(1)));
        assert!(d1.acquire(DataId::from_raw(1)));
        assert!(d2.acquire(DataId::from_raw(1)));
        assert!(!d2.acquire(DataId::from_raw(2)));
        assert_eq!(admission.data_connections(), 2);
        d1.release(DataId::from_raw(1));
        assert!(d2.acquire(DataId::from_raw(2)));
        drop(d2);
        assert_eq!(admission.data_connections(), 0);
        assert!(DataPermits::unlimited().acquire(DataId::from_raw(9)));
    }
}
