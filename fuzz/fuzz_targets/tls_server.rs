//! The TLS adapter in the server role fed arbitrary bytes (as a peer would send them, in
//! arbitrary chunks): never panics, every fault is a typed error, and nothing decrypts out of
//! bytes that never completed a handshake.
#![no_main]

use std::sync::{Arc, OnceLock};

use ftps_proto::tls::{
    self, PrivateKeyDer, ResumptionPolicy, ServerConfig, TlsChannel, TlsEvent, TlsLimits,
};
use libfuzzer_sys::fuzz_target;

/// One certificate for the whole run: key generation per input would drown the fuzzer.
fn base_config() -> &'static Arc<ServerConfig> {
    static CONFIG: OnceLock<Arc<ServerConfig>> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let key = rcgen::KeyPair::generate().expect("key generation");
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .expect("params")
            .self_signed(&key)
            .expect("self-signed certificate");
        let key = PrivateKeyDer::try_from(key.serialize_der()).expect("key DER");
        Arc::new(tls::server_config(vec![cert.der().clone()], key).expect("server config"))
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&knobs, data)) = data.split_first() else {
        return;
    };
    let policy = if knobs & 1 == 0 {
        ResumptionPolicy::Optional
    } else {
        ResumptionPolicy::Required
    };
    let chunk = usize::from(knobs >> 1) + 1;
    let config = tls::server_config_for_control(base_config());
    let mut server =
        TlsChannel::server(config, policy, TlsLimits::default()).expect("server channel");
    for piece in data.chunks(chunk) {
        let mut rest = piece;
        while !rest.is_empty() {
            let accepted = match server.feed(rest) {
                Ok(n) => n,
                Err(_) => return, // sticky, typed failure: done
            };
            rest = &rest[accepted..];
            loop {
                match server.poll() {
                    Ok(TlsEvent::Idle) => break,
                    Ok(TlsEvent::Data(_)) => {
                        // Possible only after a real handshake, which random bytes cannot do.
                        assert!(server.is_handshake_complete(), "data before the handshake");
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
            let pending = server.pending_transmit().len();
            server
                .consume_transmit(pending)
                .expect("consume what is pending");
            if accepted == 0 {
                break; // buffer full and nothing processed: stop feeding this input
            }
        }
    }
    server.feed_eof();
    while let Ok(event) = server.poll() {
        if event == TlsEvent::Idle {
            break;
        }
    }
});
