//! What only the async client (`ftps_tokio::client::Client`) has: cancellation (a dropped
//! call's future aborts its transfer with `ABOR` and the session goes on), downloads as a
//! stream of chunks, and futures a multi-threaded runtime can spawn. The verbs themselves run
//! through the interop suites (`FTPS_TEST_DRIVER=tokio`: client_interop, proftpd_interop,
//! std_server, prot_switch, reuse_matrix) against vsftpd, ProFTPD, pyftpdlib and our servers.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use ftps_std::{ClientOptions, DataConnectionMode, TraceDirection, Tracer};
use ftps_tests::data::payload;
use ftps_tests::own_client::{EPSV, client_options};
use ftps_tests::own_server::OwnServer;
use ftps_tests::peers::Vsftpd;
use ftps_tokio::client::Client;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const BIG: usize = 32 << 20;
const MIB: usize = 1 << 20;

/// The control lines a client sent and received, in order.
type Lines = Arc<Mutex<Vec<(TraceDirection, String)>>>;

fn traced(mut options: ClientOptions) -> (ClientOptions, Lines) {
    let lines: Lines = Arc::default();
    let sink = Arc::clone(&lines);
    options.trace = Some(Tracer::new(move |direction, line| {
        let line = String::from_utf8_lossy(line).into_owned();
        sink.lock().unwrap().push((direction, line));
    }));
    (options, lines)
}

fn sent(lines: &Lines, prefix: &str) -> usize {
    let lines = lines.lock().unwrap();
    lines
        .iter()
        .filter(|(direction, line)| *direction == TraceDirection::Sent && line.starts_with(prefix))
        .count()
}

/// A sink that takes `limit` bytes and then never again (and never wakes its task).
struct StallAfter {
    taken: usize,
    limit: usize,
}

impl AsyncWrite for StallAfter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.taken >= self.limit {
            return Poll::Pending;
        }
        let n = buf.len().min(self.limit - self.taken);
        self.taken += n;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// A source that yields `limit` bytes and then never ends (and never wakes its task).
struct PendAfter {
    given: usize,
    limit: usize,
}

impl AsyncRead for PendAfter {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.given >= self.limit {
            return Poll::Pending;
        }
        let n = buf.remaining().min(self.limit - self.given);
        buf.put_slice(&vec![b'x'; n]);
        self.given += n;
        Poll::Ready(Ok(()))
    }
}

/// Drops a `retrieve` stalled after 1 MiB of a big file, then checks the session: `ABOR` was
/// sent (at the drop, not at the next call), PWD works, and the next download is complete,
/// byte for byte, on a resumed TLS session.
async fn dropped_download_then_go_on(options: ClientOptions, user: &str, password: &str) {
    let (options, lines) = traced(options);
    let mut client = Client::connect(options).await.expect("connect");
    client.login(user, password).await.expect("login");
    let mut stall = StallAfter {
        taken: 0,
        limit: MIB,
    };
    let dropped = tokio::time::timeout(
        Duration::from_millis(500),
        client.retrieve("big.bin", 0, &mut stall),
    )
    .await;
    assert!(dropped.is_err(), "the stalled download cannot finish");
    assert_eq!(stall.taken, MIB);
    assert_eq!(
        sent(&lines, "ABOR"),
        1,
        "ABOR sent when the future was dropped"
    );

    assert!(!client.pwd().await.expect("PWD after the abort").is_empty());
    let small = payload(100_000, 7);
    let mut down = Vec::new();
    let summary = client
        .retrieve("small.bin", 0, &mut down)
        .await
        .expect("the next download");
    assert!(down == small, "the next download is the file");
    assert_eq!(summary.bytes, small.len() as u64);
    assert_eq!(summary.resumed, Some(true));
    client.quit().await.expect("QUIT");
}

// spec: T33 (ABOR in-band under TLS)
#[tokio::test]
async fn own_server_dropped_download_aborts_and_the_session_goes_on() {
    let server = OwnServer::builder().start();
    std::fs::write(server.root().join("big.bin"), payload(BIG, 1)).unwrap();
    std::fs::write(server.root().join("small.bin"), payload(100_000, 7)).unwrap();
    let options = server.client_options(false, DataConnectionMode::Passive);
    dropped_download_then_go_on(options, server.user(), server.password()).await;
}

// spec: T33
#[tokio::test]
async fn vsftpd_dropped_download_aborts_and_the_session_goes_on() {
    let server = Vsftpd::builder().start().unwrap();
    let endpoint = server.endpoint();
    std::fs::write(endpoint.root_dir.join("big.bin"), payload(BIG, 1)).unwrap();
    std::fs::write(endpoint.root_dir.join("small.bin"), payload(100_000, 7)).unwrap();
    let options = client_options(endpoint, EPSV);
    dropped_download_then_go_on(options, &endpoint.user, &endpoint.password).await;
}

/// A dropped upload: the server gets `ABOR`, keeps no file (the data connection ended without
/// close_notify: never complete), and the session uploads the next file in full.
#[tokio::test]
async fn own_server_dropped_upload_aborts_stores_nothing_and_the_session_goes_on() {
    let server = OwnServer::builder().start();
    let (options, lines) = traced(server.client_options(false, DataConnectionMode::Passive));
    let mut client = Client::connect(options).await.expect("connect");
    client
        .login(server.user(), server.password())
        .await
        .expect("login");
    let mut source = PendAfter {
        given: 0,
        limit: MIB,
    };
    let dropped = tokio::time::timeout(
        Duration::from_millis(500),
        client.store("partial.bin", &mut source),
    )
    .await;
    assert!(dropped.is_err(), "the upload's source never ends");
    assert_eq!(sent(&lines, "ABOR"), 1);

    let data = payload(300_000, 3);
    let summary = client
        .store("whole.bin", &mut data.as_slice())
        .await
        .expect("the next upload");
    assert_eq!(summary.bytes, data.len() as u64);
    assert_eq!(client.size("whole.bin").await.unwrap(), data.len() as u64);
    client.quit().await.expect("QUIT");
    assert!(std::fs::read(server.root().join("whole.bin")).unwrap() == data);
    // The aborted upload was never committed, and its temporary file is gone.
    assert_eq!(server.root_names(), vec!["whole.bin".to_owned()]);
}

/// A control command's future dropped after the command was sent: its reply is read and
/// ignored, and the next call gets its own reply.
#[tokio::test]
async fn a_dropped_command_does_not_answer_the_next_one() {
    let server = OwnServer::builder().start();
    std::fs::write(server.root().join("five.bin"), b"12345").unwrap();
    let (options, lines) = traced(server.client_options(false, DataConnectionMode::Passive));
    let mut client = Client::connect(options).await.expect("connect");
    client
        .login(server.user(), server.password())
        .await
        .expect("login");
    // Polled once (the command goes out, its reply cannot be there yet), then dropped.
    let mut call = Box::pin(client.mkdir("made"));
    // (Under load the reply can already be read within that one poll and the call completes;
    // what follows must hold either way.)
    let _first = std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await;
    drop(call);
    assert_eq!(sent(&lines, "MKD"), 1, "MKD went out before the drop");
    assert_eq!(client.size("five.bin").await.expect("SIZE"), 5);
    assert!(
        server.root().join("made").is_dir(),
        "the server ran the MKD"
    );
    client.quit().await.expect("QUIT");
}

/// A download as a stream of chunks: every byte in order, the summary at the end; and a stream
/// dropped after its first chunk aborts the transfer and the session goes on.
#[tokio::test]
async fn chunked_download_whole_and_dropped() {
    let server = OwnServer::builder().start();
    let big = payload(3 * MIB + 123, 5);
    std::fs::write(server.root().join("big.bin"), &big).unwrap();
    let (options, lines) = traced(server.client_options(false, DataConnectionMode::Passive));
    let mut client = Client::connect(options).await.expect("connect");
    client
        .login(server.user(), server.password())
        .await
        .expect("login");

    let mut download = client.retrieve_chunks("big.bin", 0).expect("RETR");
    let mut got = Vec::new();
    let mut chunks = 0;
    while let Some(chunk) = download.chunk().await.expect("a chunk") {
        assert!(!chunk.is_empty() && chunk.len() <= 256 * 1024);
        got.extend_from_slice(&chunk);
        chunks += 1;
    }
    let summary = download.summary().cloned().expect("the summary");
    drop(download);
    assert!(got == big, "the chunks are the file");
    assert!(chunks >= 12, "{chunks} chunks");
    assert_eq!(summary.bytes, big.len() as u64);
    assert_eq!(summary.reply.code.get(), 226);

    let mut download = client
        .retrieve_chunks("big.bin", 1000)
        .expect("REST + RETR");
    let first = download.chunk().await.expect("first chunk").expect("bytes");
    assert!(first[..] == big[1000..1000 + first.len()]);
    drop(download);
    assert_eq!(sent(&lines, "ABOR"), 1, "dropping the stream aborts");
    assert_eq!(client.size("big.bin").await.unwrap(), big.len() as u64);
    client.quit().await.expect("QUIT");
}

/// The calls' futures are `Send`: a multi-threaded runtime can spawn a whole session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_runs_in_a_spawned_task() {
    let server = OwnServer::builder().start();
    let data = payload(200_000, 9);
    std::fs::write(server.root().join("f.bin"), &data).unwrap();
    let options = server.client_options(false, DataConnectionMode::Passive);
    let (user, password) = (server.user().to_owned(), server.password().to_owned());
    let task = tokio::spawn(async move {
        let mut client = Client::connect(options).await?;
        client.login(&user, &password).await?;
        let mut down = Vec::new();
        client.retrieve("f.bin", 0, &mut down).await?;
        let listing = client.names(None).await?;
        client.quit().await?;
        Ok::<_, ftps_std::Error>((down, listing))
    });
    let (down, listing) = task.await.unwrap().expect("the spawned session");
    assert!(down == data);
    assert_eq!(listing, vec![b"f.bin".to_vec()]);
}
