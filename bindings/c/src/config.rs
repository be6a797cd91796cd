//! Session configurations: built from PEM bytes and plain option setters, each with its
//! `_free`. Enum-valued options are passed as `uint32_t` holding a value of the named C enum
//! and checked (an out-of-range value is `FTPS_ERR_INVALID_PARAMETER`, never undefined
//! behaviour).

use std::sync::Arc;
use std::time::Duration;

use ftps_proto::client::{ClientSessionConfig, ClientTlsMode, DataConnectionMode, DataProtection};
use ftps_proto::server::{ClientCertificates, ServerSessionConfig, ServerTlsMode};
use ftps_proto::tls::{
    self, ClientTlsOptions, ResumptionPolicy, ServerName, ServerTlsOptions, TlsVersion, Trust,
};

use crate::ffi::{
    Failure, free_handle, ftps_result, guard, in_ref, in_slice, in_str, new_handle, out_ref,
};

/// How a client secures its control connection.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ftps_tls_mode {
    /// Explicit FTPS (`AUTH TLS`), TLS required: the default.
    FTPS_TLS_EXPLICIT = 1,
    /// Implicit FTPS: TLS from the first byte (port 990).
    FTPS_TLS_IMPLICIT = 2,
    /// Explicit FTPS, continuing in clear if the server refuses `AUTH TLS` (credentials then
    /// travel in clear): an explicit opt-in. Client only.
    FTPS_TLS_EXPLICIT_IF_AVAILABLE = 3,
    /// Plain FTP, no TLS at all: an explicit opt-in. Client only.
    FTPS_TLS_PLAINTEXT = 4,
}

/// The control port for a TLS mode when none is given: 990 for implicit FTPS, 21 otherwise.
/// 0 for a value that is not an [`ftps_tls_mode`].
#[unsafe(no_mangle)]
pub extern "C" fn ftps_default_port(tls_mode: u32) -> u16 {
    client_tls_mode(tls_mode).map_or(0, ClientTlsMode::default_port)
}

fn client_tls_mode(raw: u32) -> Result<ClientTlsMode, Failure> {
    Ok(match raw {
        1 => ClientTlsMode::Explicit,
        2 => ClientTlsMode::Implicit,
        3 => ClientTlsMode::ExplicitIfAvailable,
        4 => ClientTlsMode::Plaintext,
        other => return Err(Failure::invalid(format!("TLS mode {other}"))),
    })
}

fn tls_version(raw: u32) -> Result<TlsVersion, Failure> {
    match raw {
        12 => Ok(TlsVersion::Tls12),
        13 => Ok(TlsVersion::Tls13),
        other => Err(Failure::invalid(format!(
            "TLS version {other} (12 or 13; TLS 1.2 is the minimum)"
        ))),
    }
}

/// Milliseconds as a duration; 0 is refused (a timer that fires at once is a mistake).
fn millis(ms: u64, what: &str) -> Result<Duration, Failure> {
    if ms == 0 {
        return Err(Failure::invalid(format!("{what} must be above 0 ms")));
    }
    Ok(Duration::from_millis(ms))
}

/// Everything a client session needs before it starts, but the peer's address.
#[derive(Debug)]
pub struct ftps_client_config {
    server_name: ServerName<'static>,
    trust: Trust,
    client_certificate: Option<(
        Vec<tls::CertificateDer<'static>>,
        tls::PrivateKeyDer<'static>,
    )>,
    max_version: TlsVersion,
    /// The session options (its peer, name and TLS config are set when a session starts).
    session: SessionOptions,
    /// The TLS config built from the options above, kept until an option changes.
    built: Option<Arc<tls::ClientConfig>>,
}

/// The client options that are plain data.
#[derive(Debug, Clone)]
struct SessionOptions {
    tls_mode: ClientTlsMode,
    data_protection: DataProtection,
    data_mode: DataConnectionMode,
    trust_pasv_address: bool,
    extended_data_commands: bool,
    trace_control: bool,
    timeouts: ftps_proto::client::ClientTimeouts,
    limits: ftps_proto::client::ClientLimits,
}

impl ftps_client_config {
    /// The session configuration for a session with `peer`.
    pub(crate) fn session_config(
        &mut self,
        peer: std::net::SocketAddr,
    ) -> Result<ClientSessionConfig, Failure> {
        let tls_config = match &self.built {
            Some(built) => Arc::clone(built),
            None => {
                let options = ClientTlsOptions {
                    trust: self.trust.clone(),
                    client_certificate: self
                        .client_certificate
                        .as_ref()
                        .map(|(chain, key)| (chain.clone(), key.clone_key())),
                    max_version: self.max_version,
                };
                let built = Arc::new(tls::client_config_from_options(&options)?);
                self.built = Some(Arc::clone(&built));
                built
            }
        };
        let options = &self.session;
        let mut config = ClientSessionConfig::new(peer, self.server_name.clone(), tls_config);
        config.tls_mode = options.tls_mode;
        config.data_protection = options.data_protection;
        config.data_mode = options.data_mode;
        config.trust_pasv_address = options.trust_pasv_address;
        config.extended_data_commands = options.extended_data_commands;
        config.trace_control = options.trace_control;
        config.timeouts = options.timeouts;
        config.limits = options.limits;
        Ok(config)
    }
}

/// Makes a client configuration for a server named `server_name` (a DNS name or an IP
/// address, checked against the server certificate and sent as SNI when a name) with the
/// defaults: explicit FTPS with TLS required, certificates verified against Mozilla's roots,
/// `PROT P`, passive mode, the `227` address ignored, TLS 1.2–1.3.
///
/// # Safety
/// `server_name` must be a NUL-terminated string; `out` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_config_new(
    server_name: *const core::ffi::c_char,
    out: *mut *mut ftps_client_config,
) -> ftps_result {
    guard(|| {
        // SAFETY: as the caller promises, NUL-terminated.
        let name = unsafe { in_str(server_name, "server_name") }?;
        let server_name = ServerName::try_from(name.to_owned())
            .map_err(|_| Failure::invalid(format!("{name:?} is not a DNS name or IP address")))?;
        // The core's defaults (those of `ClientSessionConfig::new`).
        let config = ftps_client_config {
            server_name,
            trust: Trust::WebpkiRoots,
            client_certificate: None,
            max_version: TlsVersion::Tls13,
            session: SessionOptions {
                tls_mode: ClientTlsMode::default(),
                data_protection: DataProtection::default(),
                data_mode: DataConnectionMode::default(),
                trust_pasv_address: false,
                extended_data_commands: true,
                trace_control: false,
                timeouts: ftps_proto::client::ClientTimeouts::default(),
                limits: ftps_proto::client::ClientLimits::default(),
            },
            built: None,
        };
        // SAFETY: as the caller promises, `out` is valid for a write.
        unsafe { new_handle(out, config) }
    })
}

/// Frees a client configuration (NULL is ignored). Sessions made from it keep working.
///
/// # Safety
/// `config` must be NULL or from `ftps_client_config_new`, not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_config_free(config: *mut ftps_client_config) {
    // SAFETY: as the caller promises.
    unsafe { free_handle(config) }
}

/// Runs `change` on a client config; every option change drops the built TLS config.
///
/// # Safety
/// `config` must be NULL or a live config not used by another thread during the call.
unsafe fn with_client_config(
    config: *mut ftps_client_config,
    change: impl FnOnce(&mut ftps_client_config) -> Result<(), Failure>,
) -> ftps_result {
    guard(|| {
        // SAFETY: as the caller promises.
        let config = unsafe { out_ref(config, "config") }?;
        change(config)?;
        config.built = None;
        Ok(())
    })
}

/// Trusts the certificates in this PEM data (a CA bundle, a private CA, a self-signed server
/// certificate) instead of Mozilla's roots. The data is checked now: no certificate, or one
/// that is not a usable trust anchor, is `FTPS_ERR_CONFIG`.
///
/// # Safety
/// `config` a live config; `pem` valid for `pem_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_config_trust_pem(
    config: *mut ftps_client_config,
    pem: *const u8,
    pem_len: usize,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        with_client_config(config, |config| {
            let pem = in_slice(pem, pem_len, "pem")?;
            tls::root_store_from_pem(pem)?;
            config.trust = Trust::Pem(pem.to_vec());
            Ok(())
        })
    }
}

/// Trusts Mozilla's root certificates (the default), for public servers.
///
/// # Safety
/// `config` a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_config_trust_webpki_roots(
    config: *mut ftps_client_config,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        with_client_config(config, |config| {
            config.trust = Trust::WebpkiRoots;
            Ok(())
        })
    }
}

/// **INSECURE**: accepts any server certificate, for any name, from any issuer (curl's
/// `--insecure`). The handshake signature is still checked, but an active attacker can read
/// and change everything, passwords included. For tests only.
///
/// # Safety
/// `config` a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_config_dangerous_skip_verification(
    config: *mut ftps_client_config,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        with_client_config(config, |config| {
            config.trust = Trust::InsecureSkipVerification;
            Ok(())
        })
    }
}

/// A client certificate (PEM chain, end-entity first) and its private key (PEM), for servers
/// that ask for one. Checked now.
///
/// # Safety
/// `config` a live config; `chain`/`key` valid for their lengths.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_config_client_certificate_pem(
    config: *mut ftps_client_config,
    chain: *const u8,
    chain_len: usize,
    key: *const u8,
    key_len: usize,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        with_client_config(config, |config| {
            let chain = in_slice(chain, chain_len, "chain")?;
            let key = in_slice(key, key_len, "key")?;
            config.client_certificate = Some(tls::client_certificate_from_pem(chain, key)?);
            Ok(())
        })
    }
}

/// The highest TLS version offered: 12 (TLS 1.2 only) or 13 (the default). TLS 1.2 is always
/// the minimum.
///
/// # Safety
/// `config` a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_config_set_max_tls_version(
    config: *mut ftps_client_config,
    version: u32,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        with_client_config(config, |config| {
            config.max_version = tls_version(version)?;
            Ok(())
        })
    }
}

/// How the control connection is secured: an [`ftps_tls_mode`] value.
///
/// # Safety
/// `config` a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_config_set_tls_mode(
    config: *mut ftps_client_config,
    tls_mode: u32,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        with_client_config(config, |config| {
            config.session.tls_mode = client_tls_mode(tls_mode)?;
            Ok(())
        })
    }
}

/// Data connections: `true` for active mode (`EPRT`/`PORT`: the server connects to a
/// listener of the caller's), `false` for passive (`EPSV`/`PASV`, the default).
///
/// # Safety
/// `config` a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_config_set_active(
    config: *mut ftps_client_config,
    active: bool,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        with_client_config(config, |config| {
            config.session.data_mode = if active {
                DataConnectionMode::Active
            } else {
                DataConnectionMode::Passive
            };
            Ok(())
        })
    }
}

/// Data-connection protection set up by the login: `true` for `PROT P` (the default),
/// `false` for `PROT C` (data in clear: an explicit opt-in).
///
/// # Safety
/// `config` a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_config_set_private_data(
    config: *mut ftps_client_config,
    private_data: bool,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        with_client_config(config, |config| {
            config.session.data_protection = if private_data {
                DataProtection::Private
            } else {
                DataProtection::Clear
            };
            Ok(())
        })
    }
}

/// Connect to the address a `227` reply names instead of the control peer's IP (off by
/// default: NAT, CVE-2020-8284), and whether to use `EPSV`/`EPRT` first (on by default).
///
/// # Safety
/// `config` a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_config_set_passive_options(
    config: *mut ftps_client_config,
    trust_pasv_address: bool,
    extended_data_commands: bool,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        with_client_config(config, |config| {
            config.session.trust_pasv_address = trust_pasv_address;
            config.session.extended_data_commands = extended_data_commands;
            Ok(())
        })
    }
}

/// Reports every control line as a `FTPS_CLIENT_EVENT_CONTROL_LINE` event (the `PASS`/`ACCT`
/// argument replaced by `****` in the core). Off by default.
///
/// # Safety
/// `config` a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_config_set_trace(
    config: *mut ftps_client_config,
    trace: bool,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        with_client_config(config, |config| {
            config.session.trace_control = trace;
            Ok(())
        })
    }
}

/// Timeouts in milliseconds (each above 0): TCP connect and control TLS handshake (default
/// 30 000), a reply (60 000), an open data connection that moves no byte (120 000).
///
/// # Safety
/// `config` a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_config_set_timeouts(
    config: *mut ftps_client_config,
    connect_ms: u64,
    reply_ms: u64,
    data_idle_ms: u64,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        with_client_config(config, |config| {
            let timeouts = &mut config.session.timeouts;
            timeouts.connect = millis(connect_ms, "connect timeout")?;
            timeouts.reply = millis(reply_ms, "reply timeout")?;
            timeouts.data_idle = millis(data_idle_ms, "data idle timeout")?;
            Ok(())
        })
    }
}

/// Limits: operations queued at once (default 64) and received data held per data
/// connection until read (default 65 536 bytes; at least 16 384 is used).
///
/// # Safety
/// `config` a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_client_config_set_limits(
    config: *mut ftps_client_config,
    max_pending_ops: usize,
    data_buffer: usize,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        with_client_config(config, |config| {
            if max_pending_ops == 0 || data_buffer == 0 {
                return Err(Failure::invalid("limits must be above 0"));
            }
            config.session.limits.max_pending_ops = max_pending_ops;
            config.session.limits.data_buffer = data_buffer;
            Ok(())
        })
    }
}

/// Everything a server session needs before it starts, but its connection's addresses.
#[derive(Debug)]
pub struct ftps_server_config {
    pub(crate) session: ServerSessionConfig,
}

/// Makes a server configuration from a certificate chain (PEM, end-entity first) and its
/// private key (PEM), with the secure defaults: explicit FTPS, TLS required before login,
/// `PROT P` required, `CCC` refused, data connections must resume the control connection's
/// TLS session, bounce and port-theft defences on.
///
/// # Safety
/// `chain`/`key` valid for their lengths; `out` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_server_config_new(
    chain: *const u8,
    chain_len: usize,
    key: *const u8,
    key_len: usize,
    out: *mut *mut ftps_server_config,
) -> ftps_result {
    guard(|| {
        // SAFETY: as the caller promises.
        let chain = unsafe { in_slice(chain, chain_len, "chain") }?;
        // SAFETY: as the caller promises.
        let key = unsafe { in_slice(key, key_len, "key") }?;
        let options = ServerTlsOptions::from_pem(chain, key)?;
        let tls_config = tls::server_config_from_options(&options)?;
        let config = ftps_server_config {
            session: ServerSessionConfig::new(Arc::new(tls_config)),
        };
        // SAFETY: as the caller promises.
        unsafe { new_handle(out, config) }
    })
}

/// Frees a server configuration (NULL is ignored). Sessions made from it keep working.
///
/// # Safety
/// `config` must be NULL or from `ftps_server_config_new`, not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_server_config_free(config: *mut ftps_server_config) {
    // SAFETY: as the caller promises.
    unsafe { free_handle(config) }
}

/// Runs `change` on a server config.
///
/// # Safety
/// `config` must be NULL or a live config not used by another thread during the call.
unsafe fn with_server_config(
    config: *mut ftps_server_config,
    change: impl FnOnce(&mut ServerSessionConfig) -> Result<(), Failure>,
) -> ftps_result {
    guard(|| {
        // SAFETY: as the caller promises.
        let config = unsafe { out_ref(config, "config") }?;
        change(&mut config.session)
    })
}

/// Implicit FTPS (TLS from the first byte) when `implicit`, explicit (`AUTH TLS`) otherwise:
/// set it per listener.
///
/// # Safety
/// `config` a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_server_config_set_implicit(
    config: *mut ftps_server_config,
    implicit: bool,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        with_server_config(config, |config| {
            config.tls_mode = if implicit {
                ServerTlsMode::Implicit
            } else {
                ServerTlsMode::Explicit
            };
            Ok(())
        })
    }
}

/// Whether data connections must resume the control connection's TLS session: 0 required
/// (the default, RFC 4217 §10.2), 1 optional (lets clients without session reuse in, such as
/// Python's ftplib), 2 off (never resumed).
///
/// # Safety
/// `config` a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_server_config_set_data_resumption(
    config: *mut ftps_server_config,
    policy: u32,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        with_server_config(config, |config| {
            config.data_resumption = match policy {
                0 => ResumptionPolicy::Required,
                1 => ResumptionPolicy::Optional,
                2 => ResumptionPolicy::Off,
                other => return Err(Failure::invalid(format!("resumption policy {other}"))),
            };
            Ok(())
        })
    }
}

/// Policies: accept `CCC` after login (default off), require a client certificate for login
/// (default off; the TLS config must ask for one).
///
/// # Safety
/// `config` a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_server_config_set_policies(
    config: *mut ftps_server_config,
    allow_ccc: bool,
    require_client_certificate: bool,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        with_server_config(config, |config| {
            config.allow_ccc = allow_ccc;
            config.client_certificates = if require_client_certificate {
                ClientCertificates::Required
            } else {
                ClientCertificates::Optional
            };
            Ok(())
        })
    }
}

/// The IPv4 address put into `227` replies (a server behind NAT); NULL uses the listener's.
///
/// # Safety
/// `config` a live config; `addr` NULL or valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_server_config_set_pasv_address(
    config: *mut ftps_server_config,
    addr: *const crate::types::ftps_socket_addr,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        with_server_config(config, |config| {
            if addr.is_null() {
                config.pasv_address = None;
                return Ok(());
            }
            let addr = in_ref(addr, "addr")?.to_rust()?;
            match addr.ip() {
                std::net::IpAddr::V4(v4) => config.pasv_address = Some(v4),
                std::net::IpAddr::V6(_) => {
                    return Err(Failure::invalid("227 replies carry IPv4 addresses only"));
                }
            }
            Ok(())
        })
    }
}

/// Timeouts in milliseconds (each above 0): no command while nothing runs (default
/// 300 000), a data connection that moves no byte (120 000), the delay before answering a
/// failed login (2 000).
///
/// # Safety
/// `config` a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_server_config_set_timeouts(
    config: *mut ftps_server_config,
    idle_ms: u64,
    data_ms: u64,
    failed_login_delay_ms: u64,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        with_server_config(config, |config| {
            config.timeouts.idle = millis(idle_ms, "idle timeout")?;
            config.timeouts.data = millis(data_ms, "data timeout")?;
            config.timeouts.failed_login_delay =
                millis(failed_login_delay_ms, "failed login delay")?;
            Ok(())
        })
    }
}

/// Limits: failed logins before `421` (default 3), pipelined commands (32), bytes buffered
/// per data connection (65 536).
///
/// # Safety
/// `config` a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftps_server_config_set_limits(
    config: *mut ftps_server_config,
    max_failed_logins: u32,
    max_pending_commands: usize,
    data_buffer: usize,
) -> ftps_result {
    // SAFETY: as the caller promises.
    unsafe {
        with_server_config(config, |config| {
            if max_failed_logins == 0 || max_pending_commands == 0 || data_buffer == 0 {
                return Err(Failure::invalid("limits must be above 0"));
            }
            config.limits.max_failed_logins = max_failed_logins;
            config.limits.max_pending_commands = max_pending_commands;
            config.limits.data_buffer = data_buffer;
            Ok(())
        })
    }
}
