//! Configs from plain options: what to trust, which client certificate, which TLS versions,
//! as data (PEM bytes, DER certificates) that a driver or a binding fills in without naming a
//! rustls type. [`client_config_from_options`] and [`server_config_from_options`] are the one
//! place those options become rustls configs.

use alloc::sync::Arc;
use alloc::vec::Vec;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use super::config::{ServerCheck, build_client_config, build_server_config, crypto_provider};
use super::pem::{
    certificates_from_pem, private_key_from_pem, root_store_from_certificates, root_store_from_pem,
};
use super::{TlsError, TlsVersion};

/// Which certificates a client trusts to sign the server's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Trust {
    /// Mozilla's root certificates (the `webpki-roots` crate, behind this crate's
    /// `webpki-roots` feature): for public servers.
    #[cfg(feature = "webpki-roots")]
    WebpkiRoots,
    /// The certificates in this PEM data (a CA bundle, a private CA, or a self-signed server
    /// certificate); every `CERTIFICATE` section is trusted, at least one is required.
    Pem(Vec<u8>),
    /// These certificates (DER); at least one is required.
    Certificates(Vec<CertificateDer<'static>>),
    /// **INSECURE: no certificate check at all.** Any certificate, for any name, from any
    /// issuer, expired or not, is accepted. The handshake signatures are still verified (the
    /// peer must hold the key of the certificate it shows), but nothing ties that certificate
    /// to the server, so an active attacker can read and change everything, passwords
    /// included. For tests and emergencies only (curl's `--insecure`); never a default.
    InsecureSkipVerification,
}

/// Everything a client's TLS config needs, as plain data; build it with
/// [`client_config_from_options`].
#[derive(Debug)]
pub struct ClientTlsOptions {
    /// Trust anchors for the server certificate.
    pub trust: Trust,
    /// A client certificate chain (end-entity first) and its private key, for servers that ask
    /// for one; [`client_certificate_from_pem`](super::client_certificate_from_pem) makes one
    /// from PEM bytes.
    pub client_certificate: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    /// The highest TLS version offered; TLS 1.2 is always the minimum.
    pub max_version: TlsVersion,
}

impl ClientTlsOptions {
    /// Options trusting `trust`, without a client certificate, up to TLS 1.3.
    pub fn new(trust: Trust) -> Self {
        Self {
            trust,
            client_certificate: None,
            max_version: TlsVersion::Tls13,
        }
    }
}

impl Clone for ClientTlsOptions {
    fn clone(&self) -> Self {
        Self {
            trust: self.trust.clone(),
            client_certificate: self
                .client_certificate
                .as_ref()
                .map(|(chain, key)| (chain.clone(), key.clone_key())),
            max_version: self.max_version,
        }
    }
}

/// A base client config from `options`: the crate's crypto provider, TLS 1.2 up to
/// `options.max_version`, the trust anchors (or the insecure verifier of
/// [`Trust::InsecureSkipVerification`]), the client certificate if any, ALPN `ftp`, SNI, no
/// early data. Derive the per-control config with
/// [`client_config_for_control`](super::client_config_for_control).
///
/// Errors: the trust anchors' ([`TlsError::Pem`], [`TlsError::NoCertificates`],
/// [`TlsError::InvalidTrustAnchor`]), and [`TlsError::Rustls`] if rustls refuses the client
/// certificate or key (e.g. a key that does not match the certificate).
pub fn client_config_from_options(options: &ClientTlsOptions) -> Result<ClientConfig, TlsError> {
    let provider = crypto_provider();
    let check = match &options.trust {
        #[cfg(feature = "webpki-roots")]
        Trust::WebpkiRoots => ServerCheck::Roots(RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        }),
        Trust::Pem(pem) => ServerCheck::Roots(root_store_from_pem(pem)?),
        Trust::Certificates(certificates) => {
            ServerCheck::Roots(root_store_from_certificates(certificates.iter().cloned())?)
        }
        Trust::InsecureSkipVerification => ServerCheck::Custom(Arc::new(AcceptAnyCertificate {
            provider: Arc::clone(&provider),
        })),
    };
    let client_certificate = options
        .client_certificate
        .as_ref()
        .map(|(chain, key)| (chain.clone(), key.clone_key()));
    build_client_config(provider, check, client_certificate, options.max_version)
}

/// Everything a server's TLS config needs, as plain data; build it with
/// [`server_config_from_options`].
#[derive(Debug)]
pub struct ServerTlsOptions {
    /// The server's certificate chain, end-entity first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The private key of the end-entity certificate.
    pub key: PrivateKeyDer<'static>,
    /// With `Some`, every client must present a certificate that chains to these roots (the
    /// handshake fails otherwise); [`root_store_from_pem`](super::root_store_from_pem) makes
    /// them from PEM bytes. `None`: no client certificate is asked for.
    pub client_roots: Option<RootCertStore>,
    /// The highest TLS version accepted; TLS 1.2 is always the minimum.
    pub max_version: TlsVersion,
}

impl ServerTlsOptions {
    /// Options for this chain (end-entity first) and key, without client certificates, up to
    /// TLS 1.3.
    pub fn new(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Self {
        Self {
            chain,
            key,
            client_roots: None,
            max_version: TlsVersion::Tls13,
        }
    }

    /// Like [`new`](Self::new), from PEM bytes: every certificate of `chain_pem` (end-entity
    /// first) and the first private key of `key_pem` (which may be the same bytes).
    ///
    /// Errors: [`TlsError::Pem`], [`TlsError::NoCertificates`], [`TlsError::NoPrivateKey`].
    pub fn from_pem(chain_pem: &[u8], key_pem: &[u8]) -> Result<Self, TlsError> {
        Ok(Self::new(
            certificates_from_pem(chain_pem)?,
            private_key_from_pem(key_pem)?,
        ))
    }
}

impl Clone for ServerTlsOptions {
    fn clone(&self) -> Self {
        Self {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
            client_roots: self.client_roots.clone(),
            max_version: self.max_version,
        }
    }
}

/// A base server config from `options`: the crate's crypto provider, TLS 1.2 up to
/// `options.max_version`, the chain and key, client certificates required when
/// `options.client_roots` is given (as [`server_config_with_client_auth`]), ALPN `ftp`, no
/// early data. Derive the per-control config with
/// [`server_config_for_control`](super::server_config_for_control).
///
/// Errors: [`TlsError::Rustls`] if rustls refuses the chain or key (e.g. a key that does not
/// match the certificate) or the client roots.
///
/// [`server_config_with_client_auth`]: super::server_config_with_client_auth
pub fn server_config_from_options(options: &ServerTlsOptions) -> Result<ServerConfig, TlsError> {
    build_server_config(
        options.chain.clone(),
        options.key.clone_key(),
        options.client_roots.clone(),
        options.max_version,
    )
}

/// The verifier of [`Trust::InsecureSkipVerification`]: **every certificate is accepted**
/// (any name, any issuer, any date), but the handshake signature must still be valid for the
/// certificate's key. For tests and emergencies only.
#[derive(Debug)]
struct AcceptAnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
