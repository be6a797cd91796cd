//! The TLS adapter: the one module that touches rustls's connection types
//! (`rustls::unbuffered`), for a control or a data channel, in either role.
//!
//! rustls 0.23's unbuffered API is gone from rustls's main branch; keeping every call to it in
//! this module means a later move to the successor API touches nothing else.
//!
//! # Contract: feed → poll → transmit
//!
//! A [`TlsChannel`] owns no socket, no clock and no thread. The caller:
//!
//! 1. **feeds** what the transport delivered: [`TlsChannel::feed`] (returns how many bytes it
//!    accepted — at most [`TlsLimits::max_incoming_tls`] are held; keep the rest and feed it
//!    after polling) and [`TlsChannel::feed_eof`] for end of stream;
//! 2. **polls** [`TlsChannel::poll`] until it returns [`TlsEvent::Idle`]. Events:
//!    [`TlsEvent::HandshakeComplete`] (then [`TlsChannel::info`] has the negotiated
//!    [`TlsInfo`]), [`TlsEvent::Data`] (decrypted bytes borrowed until the next call on the
//!    channel), [`TlsEvent::PeerClosed`] (the peer's close_notify: a clean end of its
//!    direction), [`TlsEvent::Closed`] (both close_notify exchanged). End of stream without the
//!    peer's close_notify is [`TlsError::Truncated`], never a clean close;
//! 3. **writes** plaintext with [`TlsChannel::write`] (returns how many bytes it accepted:
//!    0 during the handshake, while received data waits to be polled, or while
//!    [`TlsLimits::max_pending_output`] bytes wait for transmission) and ends its direction
//!    with [`TlsChannel::close`];
//! 4. **transmits** [`TlsChannel::pending_transmit`] and reports what it sent with
//!    [`TlsChannel::consume_transmit`] (or uses [`TlsChannel::take_transmit`]).
//!
//! Errors are sticky: after a failure every call returns it, and the transmit buffer may
//! still hold a fatal alert worth sending before closing the transport.
//!
//! ## Upgrades
//! - Implicit TLS (and data connections): [`TlsChannel::client`], [`TlsChannel::server`].
//! - Explicit `AUTH TLS`: [`TlsChannel::client_after_auth`], [`TlsChannel::server_after_auth`]
//!   take the number of plaintext bytes still buffered after the `234` reply / the `AUTH`
//!   line; anything but zero is [`TlsError::BytesBeforeHandshake`] (injection refused, those
//!   bytes are never processed). Plaintext arriving after the switch goes to rustls and fails
//!   the handshake.
//! - CCC (back to plaintext): after [`TlsEvent::Closed`], [`TlsChannel::take_plaintext`]
//!   returns exactly the bytes that followed the peer's close_notify record.
//!
//! ## Resumption scoping
//! [`client_config_for_control`] and [`server_config_for_control`] clone a base config with a
//! private session store, so a data connection can resume only its own control connection's
//! session; a server data channel created with [`ResumptionPolicy::Required`] refuses a full
//! handshake before sending any flight ([`TlsError::ResumptionRequired`]). Server data
//! channels use [`server_config_for_data`]: the same store, TLS 1.3 tickets reusable within
//! the control connection, and new tickets on data connections — as many as a client asks for
//! (RFC 9149, as this crate's client does), one otherwise, except on the uploads of a client
//! that re-presents tickets (see [`UNASKED_DATA_CONNECTION_TICKETS`]).
//!
//! # Configs from bytes
//! Drivers and bindings build configs from plain data, never from rustls builders, so they all
//! get the same defaults (TLS 1.2 minimum, ALPN `ftp`, no early data): PEM bytes become
//! certificates, keys and trust anchors with [`certificates_from_pem`],
//! [`private_key_from_pem`], [`root_store_from_pem`] and [`client_certificate_from_pem`];
//! [`ClientTlsOptions`] (a [`Trust`], an optional client certificate, a [`TlsVersion`] cap)
//! becomes a client config with [`client_config_from_options`], [`ServerTlsOptions`] (built
//! with [`ServerTlsOptions::from_pem`]) a server config with [`server_config_from_options`].
//! Failures are typed ([`TlsError::Pem`], [`TlsError::NoCertificates`],
//! [`TlsError::NoPrivateKey`], [`TlsError::InvalidTrustAnchor`]), and a refused certificate is
//! classified by [`TlsError::certificate_problem`] as a plain [`CertificateProblem`]. Reading
//! the files is the driver's job. (These need the `std` feature and a crypto provider;
//! `Trust::WebpkiRoots` also the `webpki-roots` feature.)
//!
//! # Example: handshake and echo in memory
//!
//! ```
//! # #[cfg(all(feature = "std", feature = "ring"))] {
//! use std::sync::Arc;
//! use ftps_proto::tls::{self, TlsChannel, TlsEvent, TlsLimits, ResumptionPolicy};
//! use rustls::pki_types::{PrivateKeyDer, ServerName};
//!
//! // A CA and a leaf for `localhost`, made with rcgen.
//! let ca_key = rcgen::KeyPair::generate().unwrap();
//! let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
//! ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
//! let ca_cert = ca_params.self_signed(&ca_key).unwrap();
//! let ca = rcgen::Issuer::new(ca_params, ca_key);
//! let leaf_key = rcgen::KeyPair::generate().unwrap();
//! let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
//!     .unwrap()
//!     .signed_by(&leaf_key, &ca)
//!     .unwrap();
//!
//! let mut roots = rustls::RootCertStore::empty();
//! roots.add(ca_cert.der().clone()).unwrap();
//! let key = PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap();
//! let client_base = Arc::new(tls::client_config(roots).unwrap());
//! let server_base = Arc::new(tls::server_config(vec![leaf.der().clone()], key).unwrap());
//!
//! let name = ServerName::try_from("localhost").unwrap();
//! let mut client = TlsChannel::client(
//!     tls::client_config_for_control(&client_base), name, TlsLimits::default()).unwrap();
//! let mut server = TlsChannel::server(
//!     tls::server_config_for_control(&server_base),
//!     ResumptionPolicy::Optional, TlsLimits::default()).unwrap();
//!
//! // Move pending bytes from one channel to the other (a real driver uses sockets).
//! fn pump(from: &mut TlsChannel, to: &mut TlsChannel) {
//!     let n = to.feed(from.pending_transmit()).unwrap();
//!     from.consume_transmit(n).unwrap();
//! }
//!
//! let mut echoed = Vec::new();
//! let mut client_ready = false;
//! for _ in 0..20 {
//!     pump(&mut client, &mut server);
//!     loop {
//!         match server.poll().unwrap() {
//!             // Echo: write back what arrived (all of it fits under the output limit).
//!             TlsEvent::Data(bytes) => {
//!                 let bytes = bytes.to_vec();
//!                 assert_eq!(server.write(&bytes).unwrap(), bytes.len());
//!             }
//!             TlsEvent::Idle => break,
//!             _ => {}
//!         }
//!     }
//!     pump(&mut server, &mut client);
//!     loop {
//!         match client.poll().unwrap() {
//!             TlsEvent::HandshakeComplete => client_ready = true,
//!             TlsEvent::Data(bytes) => echoed.extend_from_slice(bytes),
//!             TlsEvent::Idle => break,
//!             _ => {}
//!         }
//!     }
//!     if client_ready && echoed.is_empty() && client.pending_transmit().is_empty() {
//!         assert_eq!(client.write(b"PWD\r\n").unwrap(), 5);
//!     }
//!     if echoed == b"PWD\r\n" {
//!         break;
//!     }
//! }
//! assert_eq!(echoed, b"PWD\r\n");
//! let info = client.info().unwrap();
//! assert_eq!(info.alpn.as_deref(), Some(&b"ftp"[..]));
//! assert_eq!(info.version, tls::TlsVersion::Tls13);
//! # }
//! ```

mod buffers;
mod channel;
mod config;
mod error;
#[cfg(all(test, feature = "std", any(feature = "ring", feature = "aws-lc-rs")))]
mod from_bytes_tests;
mod info;
#[cfg(all(feature = "std", any(feature = "ring", feature = "aws-lc-rs")))]
mod options;
#[cfg(feature = "std")]
mod pem;

pub use channel::{TlsChannel, TlsEvent, TlsRole};
#[cfg(any(feature = "ring", feature = "aws-lc-rs"))]
pub use config::crypto_provider;
pub use config::{
    ALPN_FTP, MAX_DATA_CONNECTION_TICKETS, UNASKED_DATA_CONNECTION_TICKETS, server_config_for_data,
    server_config_for_data_without_unasked_tickets, server_config_without_resumption,
};
#[cfg(feature = "std")]
pub use config::{
    CLIENT_SESSIONS_PER_CONTROL, CLIENT_TICKET_REQUEST, SERVER_SESSIONS_PER_CONTROL, TicketReuse,
    apply_client_defaults, client_config_for_control, server_config_for_control,
    server_config_for_control_tracked,
};
#[cfg(all(feature = "std", any(feature = "ring", feature = "aws-lc-rs")))]
pub use config::{
    client_config, client_config_with_certificate, server_config, server_config_with_client_auth,
};
pub use error::{CertificateProblem, PemProblem, TlsError};
pub use info::{HandshakeKind, ResumptionPolicy, TlsInfo, TlsLimits, TlsVersion};
#[cfg(all(feature = "std", any(feature = "ring", feature = "aws-lc-rs")))]
pub use options::{
    ClientTlsOptions, ServerTlsOptions, Trust, client_config_from_options,
    server_config_from_options,
};
#[cfg(feature = "std")]
pub use pem::{
    certificates_from_pem, client_certificate_from_pem, private_key_from_pem, root_store_from_pem,
};
/// The rustls types that appear in this module's signatures, re-exported so callers use the
/// same rustls version as the adapter.
pub use rustls::{ClientConfig, RootCertStore, ServerConfig};
/// Certificate, key and server-name types used by the config builders and client channels.
pub use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
