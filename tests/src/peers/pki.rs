//! A throw-away CA and a server certificate for `localhost` / 127.0.0.1 / ::1.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use super::Result;

/// A fresh CA and a leaf certificate it signed, all PEM. Keys are ECDSA P-256.
#[derive(Debug, Clone)]
pub struct TestPki {
    /// The CA certificate: what a client trusts.
    pub ca_cert_pem: String,
    /// The server (leaf) certificate, valid for `localhost`, `127.0.0.1` and `::1`.
    pub server_cert_pem: String,
    /// The server's private key (PKCS#8).
    pub server_key_pem: String,
}

impl TestPki {
    /// Generates a new CA and server certificate.
    pub fn generate() -> Result<Self> {
        let mut ca_params = CertificateParams::new(Vec::new())?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "ftps interop test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate()?;
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let ca = Issuer::new(ca_params, ca_key);

        let mut server_params = CertificateParams::new(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ])?;
        server_params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        server_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_key = KeyPair::generate()?;
        let server_cert = server_params.signed_by(&server_key, &ca)?;

        Ok(Self {
            ca_cert_pem: ca_cert.pem(),
            server_cert_pem: server_cert.pem(),
            server_key_pem: server_key.serialize_pem(),
        })
    }
}
