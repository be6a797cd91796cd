//! Certificates, private keys and trust anchors from PEM bytes, with typed errors
//! ([`TlsError::Pem`], [`TlsError::NoCertificates`], [`TlsError::NoPrivateKey`],
//! [`TlsError::InvalidTrustAnchor`]). Reading files is the driver's business: these take the
//! bytes, so every driver and binding parses them the same way.

use alloc::string::ToString;
use alloc::vec::Vec;

use rustls::RootCertStore;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::{PemProblem, TlsError};

/// Every `CERTIFICATE` section of `pem`, in order (for a chain: end-entity first). Text
/// outside PEM sections and sections of other kinds (keys) are skipped.
///
/// Errors: [`TlsError::Pem`] for malformed PEM, [`TlsError::NoCertificates`] if there is no
/// certificate at all. The DER inside is not checked here (the handshake or
/// [`root_store_from_pem`] does that).
pub fn certificates_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_error)?;
    if certificates.is_empty() {
        return Err(TlsError::NoCertificates);
    }
    Ok(certificates)
}

/// The first private key in `pem`: PKCS#8 (`PRIVATE KEY`), PKCS#1 (`RSA PRIVATE KEY`) or SEC1
/// (`EC PRIVATE KEY`). Other sections (certificates) are skipped, so a file holding both the
/// chain and the key works.
///
/// Errors: [`TlsError::Pem`] for malformed PEM, [`TlsError::NoPrivateKey`] if there is no key.
pub fn private_key_from_pem(pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|error| match error {
        pem::Error::NoItemsFound => TlsError::NoPrivateKey,
        error => pem_error(error),
    })
}

/// Trust anchors from every `CERTIFICATE` section of `pem` (a CA bundle, a private CA, or a
/// self-signed server certificate).
///
/// Errors: those of [`certificates_from_pem`], and [`TlsError::InvalidTrustAnchor`] for a
/// certificate that cannot be used as a trust anchor (every one must be usable).
pub fn root_store_from_pem(pem: &[u8]) -> Result<RootCertStore, TlsError> {
    root_store_from_certificates(certificates_from_pem(pem)?)
}

/// A client (or server) certificate chain, end-entity first, and its private key, from PEM
/// bytes: `chain_pem` and `key_pem` may be the same bytes when one file holds both. The
/// result fits [`ClientTlsOptions::client_certificate`](super::ClientTlsOptions).
///
/// Errors: those of [`certificates_from_pem`] and [`private_key_from_pem`]. Whether the key
/// belongs to the certificate is checked when the config is built.
#[allow(clippy::type_complexity)]
pub fn client_certificate_from_pem(
    chain_pem: &[u8],
    key_pem: &[u8],
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    Ok((
        certificates_from_pem(chain_pem)?,
        private_key_from_pem(key_pem)?,
    ))
}

/// Trust anchors from `certificates`; at least one, and every one usable.
pub(super) fn root_store_from_certificates<'a>(
    certificates: impl IntoIterator<Item = CertificateDer<'a>>,
) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for (index, certificate) in certificates.into_iter().enumerate() {
        roots
            .add(certificate)
            .map_err(|error| TlsError::InvalidTrustAnchor {
                index,
                reason: error.to_string(),
            })?;
    }
    if roots.is_empty() {
        return Err(TlsError::NoCertificates);
    }
    Ok(roots)
}

fn pem_error(error: pem::Error) -> TlsError {
    TlsError::Pem(match error {
        pem::Error::MissingSectionEnd { .. } => PemProblem::MissingSectionEnd,
        pem::Error::IllegalSectionStart { .. } => PemProblem::IllegalSectionStart,
        pem::Error::Base64Decode(_) => PemProblem::Base64,
        pem::Error::SectionTooLarge => PemProblem::TooLarge,
        error => PemProblem::Other(error.to_string()),
    })
}
