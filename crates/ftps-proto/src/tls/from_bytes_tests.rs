//! Configs from bytes: PEM parsing with typed errors, client and server options, the TLS
//! version cap, the insecure verifier and certificate problems, checked with real PEMs (rcgen)
//! and handshakes in memory.

use std::sync::Arc;

use super::*;

/// A CA: its PEM and the issuer that signs leaves.
struct Ca {
    pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

fn ca(name: &str) -> Ca {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    Ca {
        pem: cert.pem(),
        issuer: rcgen::Issuer::new(params, key),
    }
}

/// A leaf for `names` signed by `ca`: (certificate PEM, PKCS#8 key PEM).
fn leaf(ca: &Ca, names: &[&str]) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let names = names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    let cert = rcgen::CertificateParams::new(names)
        .unwrap()
        .signed_by(&key, &ca.issuer)
        .unwrap();
    (cert.pem(), key.serialize_pem())
}

fn pump(from: &mut TlsChannel, to: &mut TlsChannel) -> Result<(), TlsError> {
    let n = to.feed(from.pending_transmit())?;
    from.consume_transmit(n)?;
    Ok(())
}

/// Polls `channel` until idle; sets `done` on `HandshakeComplete`.
fn drain(channel: &mut TlsChannel, done: &mut bool) -> Result<(), TlsError> {
    loop {
        match channel.poll()? {
            TlsEvent::HandshakeComplete => *done = true,
            TlsEvent::Idle => return Ok(()),
            _ => {}
        }
    }
}

/// Runs a handshake in memory to `name`; the client's view of it, or the first error of
/// either side.
fn handshake(client: ClientConfig, server: ServerConfig, name: &str) -> Result<TlsInfo, TlsError> {
    let mut client = TlsChannel::client(
        client_config_for_control(&Arc::new(client)),
        ServerName::try_from(name.to_string()).unwrap(),
        TlsLimits::default(),
    )?;
    let mut server = TlsChannel::server(
        server_config_for_control(&Arc::new(server)),
        ResumptionPolicy::Optional,
        TlsLimits::default(),
    )?;
    let (mut client_done, mut server_done) = (false, false);
    for _ in 0..20 {
        pump(&mut client, &mut server)?;
        drain(&mut server, &mut server_done)?;
        pump(&mut server, &mut client)?;
        drain(&mut client, &mut client_done)?;
        if client_done && server_done {
            return Ok(client.info().unwrap().clone());
        }
    }
    panic!("the handshake did not finish");
}

/// A server config for a `localhost` leaf of `ca`.
fn localhost_server(ca: &Ca) -> ServerConfig {
    let (cert, key) = leaf(ca, &["localhost"]);
    server_config_from_options(
        &ServerTlsOptions::from_pem(cert.as_bytes(), key.as_bytes()).unwrap(),
    )
    .unwrap()
}

#[test]
fn roots_from_pem_one_and_several() {
    let (a, b) = (ca("A"), ca("B"));
    assert_eq!(root_store_from_pem(a.pem.as_bytes()).unwrap().len(), 1);
    let both = format!("# a bundle\n{}\n{}", a.pem, b.pem);
    assert_eq!(root_store_from_pem(both.as_bytes()).unwrap().len(), 2);
    assert_eq!(certificates_from_pem(both.as_bytes()).unwrap().len(), 2);
}

#[test]
fn roots_from_garbage_or_empty_pem_are_typed_errors() {
    assert_eq!(
        root_store_from_pem(b"").unwrap_err(),
        TlsError::NoCertificates
    );
    assert_eq!(
        root_store_from_pem(b"this is not PEM at all\n").unwrap_err(),
        TlsError::NoCertificates
    );
    let bad_base64 = b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
    assert_eq!(
        root_store_from_pem(bad_base64).unwrap_err(),
        TlsError::Pem(PemProblem::Base64)
    );
    let unterminated = b"-----BEGIN CERTIFICATE-----\nAAAA\n";
    assert_eq!(
        root_store_from_pem(unterminated).unwrap_err(),
        TlsError::Pem(PemProblem::MissingSectionEnd)
    );
    // Valid PEM and base64, but not a certificate.
    let not_a_certificate = b"-----BEGIN CERTIFICATE-----\nAAECAw==\n-----END CERTIFICATE-----\n";
    let error = root_store_from_pem(not_a_certificate).unwrap_err();
    assert!(
        matches!(error, TlsError::InvalidTrustAnchor { index: 0, .. }),
        "{error:?}"
    );
    // The messages name the problem.
    assert!(
        TlsError::NoCertificates
            .to_string()
            .contains("no certificate")
    );
    assert!(
        TlsError::Pem(PemProblem::Base64)
            .to_string()
            .contains("base64")
    );
    assert!(error.to_string().contains("#0"), "{error}");
}

#[test]
fn key_from_pem() {
    let key = rcgen::KeyPair::generate().unwrap();
    let parsed = private_key_from_pem(key.serialize_pem().as_bytes()).unwrap();
    assert!(matches!(parsed, PrivateKeyDer::Pkcs8(_)));
    assert_eq!(parsed.secret_der(), key.serialize_der().as_slice());
    // One file with the chain and the key: the key is found after the certificate.
    let (cert, key_pem) = leaf(&ca("CA"), &["localhost"]);
    let combined = format!("{cert}{key_pem}");
    assert!(private_key_from_pem(combined.as_bytes()).is_ok());
    let (chain, _key) =
        client_certificate_from_pem(combined.as_bytes(), combined.as_bytes()).unwrap();
    assert_eq!(chain.len(), 1);
}

#[test]
fn key_from_pem_without_a_key_is_a_typed_error() {
    let (cert, _key) = leaf(&ca("CA"), &["localhost"]);
    assert_eq!(
        private_key_from_pem(cert.as_bytes()).unwrap_err(),
        TlsError::NoPrivateKey
    );
    assert_eq!(
        private_key_from_pem(b"").unwrap_err(),
        TlsError::NoPrivateKey
    );
    assert_eq!(
        ServerTlsOptions::from_pem(cert.as_bytes(), cert.as_bytes()).unwrap_err(),
        TlsError::NoPrivateKey
    );
    assert!(TlsError::NoPrivateKey.to_string().contains("private key"));
}

#[test]
fn empty_certificate_list_is_a_typed_error() {
    let options = ClientTlsOptions::new(Trust::Certificates(vec![]));
    assert_eq!(
        client_config_from_options(&options).unwrap_err(),
        TlsError::NoCertificates
    );
    let options = ClientTlsOptions::new(Trust::Pem(b"no PEM here".to_vec()));
    assert_eq!(
        client_config_from_options(&options).unwrap_err(),
        TlsError::NoCertificates
    );
}

#[test]
fn client_and_server_from_pem_complete_a_handshake() {
    let ca = ca("CA");
    let mut options = ClientTlsOptions::new(Trust::Pem(ca.pem.clone().into_bytes()));
    let info = handshake(
        client_config_from_options(&options).unwrap(),
        localhost_server(&ca),
        "localhost",
    )
    .unwrap();
    assert_eq!(info.version, TlsVersion::Tls13);
    assert_eq!(info.alpn.as_deref(), Some(ALPN_FTP));

    // The same with DER certificates, and with a TLS 1.2 cap on the server side.
    options.trust = Trust::Certificates(certificates_from_pem(ca.pem.as_bytes()).unwrap());
    let (cert, key) = leaf(&ca, &["localhost"]);
    let mut server = ServerTlsOptions::from_pem(cert.as_bytes(), key.as_bytes()).unwrap();
    server.max_version = TlsVersion::Tls12;
    let info = handshake(
        client_config_from_options(&options).unwrap(),
        server_config_from_options(&server).unwrap(),
        "localhost",
    )
    .unwrap();
    assert_eq!(info.version, TlsVersion::Tls12);
}

#[test]
fn client_capped_at_tls12_offers_only_tls12() {
    let ca = ca("CA");
    let mut options = ClientTlsOptions::new(Trust::Pem(ca.pem.clone().into_bytes()));
    options.max_version = TlsVersion::Tls12;
    // The server offers 1.3 too; the client's offer decides.
    let info = handshake(
        client_config_from_options(&options).unwrap(),
        localhost_server(&ca),
        "localhost",
    )
    .unwrap();
    assert_eq!(info.version, TlsVersion::Tls12);

    // A TLS 1.3-only server has nothing in common with it.
    let (cert, key) = leaf(&ca, &["localhost"]);
    let tls13_only = ServerConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            certificates_from_pem(cert.as_bytes()).unwrap(),
            private_key_from_pem(key.as_bytes()).unwrap(),
        )
        .unwrap();
    let error = handshake(
        client_config_from_options(&options).unwrap(),
        tls13_only,
        "localhost",
    )
    .unwrap_err();
    assert!(error.is_peer_incompatible(), "{error:?}");
    assert_eq!(error.certificate_problem(), None);
}

#[test]
fn insecure_accepts_another_name_but_real_roots_refuse_it() {
    let ca = ca("CA");
    let (cert, key) = leaf(&ca, &["other.example"]);
    let server = ServerTlsOptions::from_pem(cert.as_bytes(), key.as_bytes()).unwrap();

    let insecure = ClientTlsOptions::new(Trust::InsecureSkipVerification);
    let info = handshake(
        client_config_from_options(&insecure).unwrap(),
        server_config_from_options(&server).unwrap(),
        "localhost",
    )
    .unwrap();
    assert_eq!(info.version, TlsVersion::Tls13);

    let verified = ClientTlsOptions::new(Trust::Pem(ca.pem.clone().into_bytes()));
    let error = handshake(
        client_config_from_options(&verified).unwrap(),
        server_config_from_options(&server).unwrap(),
        "localhost",
    )
    .unwrap_err();
    assert_eq!(
        error.certificate_problem(),
        Some(CertificateProblem::NotValidForName),
        "{error:?}"
    );

    // A CA the client does not trust: an unknown issuer.
    let stranger = ClientTlsOptions::new(Trust::Pem(self::ca("Stranger").pem.into_bytes()));
    let error = handshake(
        client_config_from_options(&stranger).unwrap(),
        localhost_server(&ca),
        "localhost",
    )
    .unwrap_err();
    assert_eq!(
        error.certificate_problem(),
        Some(CertificateProblem::UnknownIssuer),
        "{error:?}"
    );
}

#[test]
fn insecure_still_checks_the_handshake_signature() {
    // The server presents a certificate whose key it does not hold: even the insecure
    // verifier refuses the handshake (the signature does not match the certificate).
    let ca = ca("CA");
    let (cert, _key) = leaf(&ca, &["localhost"]);
    let other_key = rcgen::KeyPair::generate().unwrap().serialize_pem();
    let chain = certificates_from_pem(cert.as_bytes()).unwrap();
    let key = private_key_from_pem(other_key.as_bytes()).unwrap();
    // rustls refuses a mismatched pair in `with_single_cert`; a resolver that skips the check
    // is needed to make such a server.
    let signing_key = crypto_provider()
        .key_provider
        .load_private_key(key)
        .unwrap();
    let certified = Arc::new(rustls::sign::CertifiedKey::new(chain, signing_key));
    #[derive(Debug)]
    struct Fixed(Arc<rustls::sign::CertifiedKey>);
    impl rustls::server::ResolvesServerCert for Fixed {
        fn resolve(
            &self,
            _hello: rustls::server::ClientHello<'_>,
        ) -> Option<Arc<rustls::sign::CertifiedKey>> {
            Some(Arc::clone(&self.0))
        }
    }
    let mut server = ServerConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Fixed(certified)));
    server.alpn_protocols = vec![ALPN_FTP.to_vec()];
    let insecure = ClientTlsOptions::new(Trust::InsecureSkipVerification);
    let error = handshake(
        client_config_from_options(&insecure).unwrap(),
        server,
        "localhost",
    )
    .unwrap_err();
    assert_eq!(
        error.certificate_problem(),
        Some(CertificateProblem::BadSignature),
        "{error:?}"
    );
}

#[test]
fn client_certificate_from_pem_and_required_client_roots() {
    let server_ca = ca("Server CA");
    let client_ca = ca("Client CA");
    let (server_cert, server_key) = leaf(&server_ca, &["localhost"]);
    let (client_cert, client_key) = leaf(&client_ca, &["client"]);
    let mut server =
        ServerTlsOptions::from_pem(server_cert.as_bytes(), server_key.as_bytes()).unwrap();
    server.client_roots = Some(root_store_from_pem(client_ca.pem.as_bytes()).unwrap());

    let mut client = ClientTlsOptions::new(Trust::Pem(server_ca.pem.clone().into_bytes()));
    client.client_certificate =
        Some(client_certificate_from_pem(client_cert.as_bytes(), client_key.as_bytes()).unwrap());
    handshake(
        client_config_from_options(&client).unwrap(),
        server_config_from_options(&server).unwrap(),
        "localhost",
    )
    .unwrap();

    // Without a client certificate the server refuses the handshake.
    client.client_certificate = None;
    let error = handshake(
        client_config_from_options(&client).unwrap(),
        server_config_from_options(&server).unwrap(),
        "localhost",
    )
    .unwrap_err();
    assert!(matches!(error, TlsError::Rustls(_)), "{error:?}");

    // A key that does not belong to the certificate is refused when the config is built.
    let stray_key = rcgen::KeyPair::generate().unwrap().serialize_pem();
    client.client_certificate =
        Some(client_certificate_from_pem(client_cert.as_bytes(), stray_key.as_bytes()).unwrap());
    assert!(client_config_from_options(&client).is_err());
}

#[test]
fn certificate_problem_is_none_for_other_errors() {
    assert_eq!(TlsError::Truncated.certificate_problem(), None);
    assert_eq!(TlsError::NoCertificates.certificate_problem(), None);
    assert!(!TlsError::Truncated.is_peer_incompatible());
    let expired = TlsError::Rustls(rustls::Error::InvalidCertificate(
        rustls::CertificateError::Expired,
    ));
    assert_eq!(
        expired.certificate_problem(),
        Some(CertificateProblem::Expired)
    );
}
