//! Session configurations: keyword arguments, PEM from bytes or a path, the core's secure
//! defaults. The TLS config is built once per configuration and shared by its sessions.

use std::sync::Arc;
use std::time::Duration;

use ftps_proto::client::{
    ClientSessionConfig, ClientTimeouts, ClientTlsMode, DataConnectionMode, DataProtection,
};
use ftps_proto::error::ErrorKind;
use ftps_proto::server::{ClientCertificates, ServerSessionConfig, ServerTimeouts, ServerTlsMode};
use ftps_proto::tls::{
    self, ClientTlsOptions, ResumptionPolicy, ServerName, ServerTlsOptions, TlsError, TlsVersion,
    Trust,
};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use crate::conv::{error_to_err, usage};

/// PEM data: `bytes` are the PEM text itself; `str` or `os.PathLike` name a file to read.
fn pem_from(py: Python<'_>, value: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<u8>> {
    if let Ok(bytes) = value.downcast::<PyBytes>() {
        return Ok(bytes.as_bytes().to_vec());
    }
    let is_path =
        value.downcast::<PyString>().is_ok() || value.hasattr("__fspath__").unwrap_or(false);
    if !is_path {
        return Err(PyTypeError::new_err(format!(
            "{what}: expected PEM bytes or a path (str or os.PathLike)"
        )));
    }
    let path = py.import("os")?.call_method1("fsdecode", (value,))?;
    let path: String = path.extract()?;
    std::fs::read(&path).map_err(|error| {
        error_to_err(
            py,
            ErrorKind::Config,
            format!("{what}: cannot read {path}: {error}"),
        )
    })
}

fn tls_error(py: Python<'_>, what: &str, error: &TlsError) -> PyErr {
    error_to_err(py, error.kind(), format!("{what}: {error}"))
}

fn seconds(
    py: Python<'_>,
    value: Option<f64>,
    default: Duration,
    what: &str,
) -> PyResult<Duration> {
    match value {
        None => Ok(default),
        Some(secs) if secs.is_finite() && secs > 0.0 && secs < 1e9 => {
            Ok(Duration::from_secs_f64(secs))
        }
        Some(secs) => Err(usage(
            py,
            &format!("{what} must be a positive number of seconds, not {secs}"),
        )),
    }
}

fn max_version(py: Python<'_>, name: &str) -> PyResult<TlsVersion> {
    match name {
        "1.2" => Ok(TlsVersion::Tls12),
        "1.3" => Ok(TlsVersion::Tls13),
        other => Err(usage(
            py,
            &format!("max_tls_version must be \"1.2\" or \"1.3\", not {other:?}"),
        )),
    }
}

/// Everything a client session needs but the server's address: the server name checked
/// against its certificate, what to trust, and the session options.
#[pyclass(frozen, module = "ftps")]
pub(crate) struct ClientConfig {
    server_name: String,
    tls_mode_name: String,
    config: ClientSessionConfig,
}

impl ClientConfig {
    /// The session configuration for a session with `peer`.
    pub(crate) fn session_config(&self, peer: std::net::SocketAddr) -> ClientSessionConfig {
        let mut config = self.config.clone();
        config.peer = peer;
        config
    }
}

#[pymethods]
impl ClientConfig {
    /// See the stub (python/ftps/_ftps.pyi) for each option.
    #[new]
    #[pyo3(signature = (
        server_name,
        *,
        tls_mode = "explicit",
        trust = None,
        insecure_skip_verify = false,
        client_certificate = None,
        client_key = None,
        max_tls_version = "1.3",
        data_protection = "private",
        data_mode = "passive",
        trust_pasv_address = false,
        extended_data_commands = true,
        trace_control = false,
        connect_timeout = None,
        reply_timeout = None,
        data_idle_timeout = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        server_name: &str,
        tls_mode: &str,
        trust: Option<&Bound<'_, PyAny>>,
        insecure_skip_verify: bool,
        client_certificate: Option<&Bound<'_, PyAny>>,
        client_key: Option<&Bound<'_, PyAny>>,
        max_tls_version: &str,
        data_protection: &str,
        data_mode: &str,
        trust_pasv_address: bool,
        extended_data_commands: bool,
        trace_control: bool,
        connect_timeout: Option<f64>,
        reply_timeout: Option<f64>,
        data_idle_timeout: Option<f64>,
    ) -> PyResult<Self> {
        let name = ServerName::try_from(server_name.to_owned()).map_err(|_| {
            usage(
                py,
                &format!("{server_name:?} is not a DNS name or IP address"),
            )
        })?;
        let mode = match tls_mode {
            "explicit" => ClientTlsMode::Explicit,
            "implicit" => ClientTlsMode::Implicit,
            "explicit_if_available" => ClientTlsMode::ExplicitIfAvailable,
            "plaintext" => ClientTlsMode::Plaintext,
            other => {
                return Err(usage(
                    py,
                    &format!(
                        "tls_mode must be \"explicit\", \"implicit\", \"explicit_if_available\" \
                         or \"plaintext\", not {other:?}"
                    ),
                ));
            }
        };
        let trust = match (trust, insecure_skip_verify) {
            (Some(_), true) => {
                return Err(usage(
                    py,
                    "trust and insecure_skip_verify exclude each other",
                ));
            }
            (None, true) => Trust::InsecureSkipVerification,
            (None, false) => Trust::WebpkiRoots,
            (Some(value), false) => Trust::Pem(pem_from(py, value, "trust")?),
        };
        let mut options = ClientTlsOptions::new(trust);
        options.max_version = max_version(py, max_tls_version)?;
        match (client_certificate, client_key) {
            (None, None) => {}
            (Some(chain), key) => {
                let chain = pem_from(py, chain, "client_certificate")?;
                let key = match key {
                    Some(key) => pem_from(py, key, "client_key")?,
                    None => chain.clone(),
                };
                options.client_certificate = Some(
                    tls::client_certificate_from_pem(&chain, &key)
                        .map_err(|error| tls_error(py, "client certificate", &error))?,
                );
            }
            (None, Some(_)) => {
                return Err(usage(py, "client_key needs client_certificate"));
            }
        }
        // Building the rustls config parses the roots: done once, without the GIL.
        let built = py
            .allow_threads(|| tls::client_config_from_options(&options))
            .map_err(|error| tls_error(py, "TLS configuration", &error))?;
        let unspecified = std::net::SocketAddr::from(([0, 0, 0, 0], 0));
        let mut config = ClientSessionConfig::new(unspecified, name, Arc::new(built));
        config.tls_mode = mode;
        config.data_protection = match data_protection {
            "private" => DataProtection::Private,
            "clear" => DataProtection::Clear,
            other => {
                return Err(usage(
                    py,
                    &format!("data_protection must be \"private\" or \"clear\", not {other:?}"),
                ));
            }
        };
        config.data_mode = match data_mode {
            "passive" => DataConnectionMode::Passive,
            "active" => DataConnectionMode::Active,
            other => {
                return Err(usage(
                    py,
                    &format!("data_mode must be \"passive\" or \"active\", not {other:?}"),
                ));
            }
        };
        config.trust_pasv_address = trust_pasv_address;
        config.extended_data_commands = extended_data_commands;
        config.trace_control = trace_control;
        let defaults = ClientTimeouts::default();
        config.timeouts = ClientTimeouts {
            connect: seconds(py, connect_timeout, defaults.connect, "connect_timeout")?,
            reply: seconds(py, reply_timeout, defaults.reply, "reply_timeout")?,
            data_idle: seconds(
                py,
                data_idle_timeout,
                defaults.data_idle,
                "data_idle_timeout",
            )?,
        };
        Ok(Self {
            server_name: server_name.to_owned(),
            tls_mode_name: tls_mode.to_owned(),
            config,
        })
    }

    /// The control port to use when none is given: 990 for implicit FTPS, 21 otherwise.
    #[getter]
    fn default_port(&self) -> u16 {
        self.config.tls_mode.default_port()
    }

    /// The name checked against the server's certificate.
    #[getter]
    fn server_name(&self) -> &str {
        &self.server_name
    }

    /// `"explicit"`, `"implicit"`, `"explicit_if_available"` or `"plaintext"`.
    #[getter]
    fn tls_mode(&self) -> &str {
        &self.tls_mode_name
    }

    fn __repr__(&self) -> String {
        format!(
            "ClientConfig({:?}, tls_mode={:?})",
            self.server_name, self.tls_mode_name
        )
    }
}

/// Everything a server session needs: its certificate and key, and its policy.
#[pyclass(frozen, module = "ftps")]
pub(crate) struct ServerConfig {
    pub(crate) config: ServerSessionConfig,
}

#[pymethods]
impl ServerConfig {
    /// See the stub (python/ftps/_ftps.pyi) for each option.
    #[new]
    #[pyo3(signature = (
        certificate_chain,
        private_key = None,
        *,
        tls_mode = "explicit",
        require_tls = true,
        require_private_data = true,
        allow_ccc = false,
        data_resumption = "required",
        client_ca = None,
        max_tls_version = "1.3",
        pasv_address = None,
        greeting = None,
        idle_timeout = None,
        data_timeout = None,
        failed_login_delay = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        certificate_chain: &Bound<'_, PyAny>,
        private_key: Option<&Bound<'_, PyAny>>,
        tls_mode: &str,
        require_tls: bool,
        require_private_data: bool,
        allow_ccc: bool,
        data_resumption: &str,
        client_ca: Option<&Bound<'_, PyAny>>,
        max_tls_version: &str,
        pasv_address: Option<&str>,
        greeting: Option<Vec<u8>>,
        idle_timeout: Option<f64>,
        data_timeout: Option<f64>,
        failed_login_delay: Option<f64>,
    ) -> PyResult<Self> {
        let chain = pem_from(py, certificate_chain, "certificate_chain")?;
        let key = match private_key {
            Some(key) => pem_from(py, key, "private_key")?,
            None => chain.clone(),
        };
        let mut options = ServerTlsOptions::from_pem(&chain, &key)
            .map_err(|error| tls_error(py, "server certificate", &error))?;
        options.max_version = max_version(py, max_tls_version)?;
        if let Some(ca) = client_ca {
            let ca = pem_from(py, ca, "client_ca")?;
            options.client_roots = Some(
                tls::root_store_from_pem(&ca)
                    .map_err(|error| tls_error(py, "client_ca", &error))?,
            );
        }
        let built = py
            .allow_threads(|| tls::server_config_from_options(&options))
            .map_err(|error| tls_error(py, "TLS configuration", &error))?;
        let mut config = ServerSessionConfig::new(Arc::new(built));
        config.tls_mode = match tls_mode {
            "explicit" => ServerTlsMode::Explicit,
            "implicit" => ServerTlsMode::Implicit,
            other => {
                return Err(usage(
                    py,
                    &format!("tls_mode must be \"explicit\" or \"implicit\", not {other:?}"),
                ));
            }
        };
        config.require_tls = require_tls;
        config.require_private_data = require_private_data;
        config.allow_ccc = allow_ccc;
        config.data_resumption = match data_resumption {
            "required" => ResumptionPolicy::Required,
            "optional" => ResumptionPolicy::Optional,
            "off" => ResumptionPolicy::Off,
            other => {
                return Err(usage(
                    py,
                    &format!(
                        "data_resumption must be \"required\", \"optional\" or \"off\", not {other:?}"
                    ),
                ));
            }
        };
        if client_ca.is_some() {
            config.client_certificates = ClientCertificates::Required;
        }
        config.pasv_address = match pasv_address {
            None => None,
            Some(text) => Some(text.parse().map_err(|_| {
                usage(py, &format!("pasv_address {text:?} is not an IPv4 address"))
            })?),
        };
        if let Some(greeting) = greeting {
            if greeting.iter().any(|&b| b == b'\r' || b == b'\n') {
                return Err(usage(py, "greeting must be one line"));
            }
            config.greeting = greeting;
        }
        let defaults = ServerTimeouts::default();
        config.timeouts = ServerTimeouts {
            idle: seconds(py, idle_timeout, defaults.idle, "idle_timeout")?,
            data: seconds(py, data_timeout, defaults.data, "data_timeout")?,
            failed_login_delay: match failed_login_delay {
                Some(0.0) => Duration::ZERO,
                other => seconds(py, other, defaults.failed_login_delay, "failed_login_delay")?,
            },
            // The control handshake and login limits keep the core's defaults.
            ..defaults
        };
        Ok(Self { config })
    }

    /// The port a listener of this mode uses by default: 990 implicit, 21 explicit.
    #[getter]
    fn default_port(&self) -> u16 {
        self.config.tls_mode.default_port()
    }

    fn __repr__(&self) -> String {
        format!(
            "ServerConfig(tls_mode={:?}, data_resumption={:?})",
            self.config.tls_mode, self.config.data_resumption
        )
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ClientConfig>()?;
    m.add_class::<ServerConfig>()?;
    Ok(())
}
