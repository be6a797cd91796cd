//! Bulk-data throughput of the TLS adapter against a bare rustls stream (the buffered
//! `ClientConnection`/`ServerConnection` API) on the same configs, in memory: the server side
//! encrypts, the client side decrypts, as on a RETR data connection. The ratio between the two
//! is the adapter's overhead (DESIGN §6).
//!
//! `cargo bench -p ftps-proto --bench tls_throughput`
#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::io::{Read, Write};
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ftps_proto::tls::{self, ResumptionPolicy, TlsChannel, TlsEvent, TlsLimits};
use rustls::pki_types::{PrivateKeyDer, ServerName};

const TRANSFER: usize = 8 << 20;
const WRITE: usize = 16 << 10;

fn configs() -> (Arc<rustls::ClientConfig>, Arc<rustls::ServerConfig>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der().clone()).unwrap();
    let key = PrivateKeyDer::try_from(key.serialize_der()).unwrap();
    let client = Arc::new(tls::client_config(roots).unwrap());
    let server = Arc::new(tls::server_config(vec![cert.der().clone()], key).unwrap());
    (
        tls::client_config_for_control(&client),
        tls::server_config_for_control(&server),
    )
}

fn adapter_pair(
    client: &Arc<rustls::ClientConfig>,
    server: &Arc<rustls::ServerConfig>,
) -> (TlsChannel, TlsChannel) {
    let name = ServerName::try_from("localhost").unwrap();
    let mut c = TlsChannel::client(client.clone(), name, TlsLimits::default()).unwrap();
    let mut s = TlsChannel::server(
        server.clone(),
        ResumptionPolicy::Optional,
        TlsLimits::default(),
    )
    .unwrap();
    while !(c.is_handshake_complete() && s.is_handshake_complete()) {
        move_bytes(&mut c, &mut s);
        move_bytes(&mut s, &mut c);
    }
    (c, s)
}

/// Moves what `from` has to send into `to` and polls `to` until idle; returns plaintext seen.
fn move_bytes(from: &mut TlsChannel, to: &mut TlsChannel) -> usize {
    let fed = to.feed(from.pending_transmit()).unwrap();
    from.consume_transmit(fed).unwrap();
    let mut plaintext = 0;
    loop {
        match to.poll().unwrap() {
            TlsEvent::Data(bytes) => plaintext += bytes.len(),
            TlsEvent::Idle => return plaintext,
            _ => {}
        }
    }
}

fn adapter_transfer(client: &mut TlsChannel, server: &mut TlsChannel, data: &[u8]) {
    let (mut sent, mut received) = (0, 0);
    while received < data.len() {
        if sent < data.len() {
            let end = (sent + WRITE).min(data.len());
            sent += server.write(&data[sent..end]).unwrap();
        }
        received += move_bytes(server, client);
    }
}

fn rustls_pair(
    client: &Arc<rustls::ClientConfig>,
    server: &Arc<rustls::ServerConfig>,
) -> (rustls::ClientConnection, rustls::ServerConnection) {
    let name = ServerName::try_from("localhost").unwrap();
    let mut c = rustls::ClientConnection::new(client.clone(), name).unwrap();
    let mut s = rustls::ServerConnection::new(server.clone()).unwrap();
    let mut wire = Vec::new();
    while c.is_handshaking() || s.is_handshaking() {
        wire.clear();
        c.write_tls(&mut wire).unwrap();
        s.read_tls(&mut wire.as_slice()).unwrap();
        s.process_new_packets().unwrap();
        wire.clear();
        s.write_tls(&mut wire).unwrap();
        c.read_tls(&mut wire.as_slice()).unwrap();
        c.process_new_packets().unwrap();
    }
    (c, s)
}

fn rustls_transfer(
    client: &mut rustls::ClientConnection,
    server: &mut rustls::ServerConnection,
    data: &[u8],
) {
    let mut wire = Vec::with_capacity(64 << 10);
    let mut sink = vec![0u8; 64 << 10];
    let (mut sent, mut received) = (0, 0);
    while received < data.len() {
        if sent < data.len() {
            let end = (sent + WRITE).min(data.len());
            server.writer().write_all(&data[sent..end]).unwrap();
            sent = end;
        }
        wire.clear();
        while server.wants_write() {
            server.write_tls(&mut wire).unwrap();
        }
        let mut input = wire.as_slice();
        while !input.is_empty() {
            client.read_tls(&mut input).unwrap();
            client.process_new_packets().unwrap();
            loop {
                match client.reader().read(&mut sink) {
                    Ok(0) => break,
                    Ok(n) => received += n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("{e}"),
                }
            }
        }
    }
}

fn bench(c: &mut Criterion) {
    let (client_config, server_config) = configs();
    let data: Vec<u8> = (0..TRANSFER).map(|i| (i * 31 % 251) as u8).collect();
    let mut group = c.benchmark_group("tls_8MiB_server_to_client");
    group.throughput(Throughput::Bytes(TRANSFER as u64));
    group.sample_size(20);

    let (mut ac, mut as_) = adapter_pair(&client_config, &server_config);
    group.bench_function("ftps_adapter", |b| {
        b.iter(|| adapter_transfer(&mut ac, &mut as_, &data))
    });
    let (mut rc, mut rs) = rustls_pair(&client_config, &server_config);
    group.bench_function("rustls_buffered", |b| {
        b.iter(|| rustls_transfer(&mut rc, &mut rs, &data))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
