//! Throughput of the incremental `ReplyParser` on a realistic control-channel stream: mostly
//! single-line replies, with FEAT-like and STAT-listing-like multi-line replies in between.
//! Fed in 1460-byte chunks (one TCP segment's payload) and as one large chunk.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_main};
use ftps_proto::codec::reply::{ReplyLimits, ReplyParser};

const TARGET_STREAM_LEN: usize = 4 * 1024 * 1024;
const SEGMENT: usize = 1460;

/// One "session's worth" of replies, repeated until the target size is reached.
fn realistic_stream() -> (Vec<u8>, usize) {
    let mut session = Vec::new();
    session.extend_from_slice(b"220 ProFTPD Server (Debian) [::ffff:127.0.0.1]\r\n");
    session.extend_from_slice(b"234 AUTH TLS successful\r\n");
    session.extend_from_slice(
        b"211-Features:\r\n AUTH TLS\r\n PBSZ\r\n PROT\r\n EPRT\r\n EPSV\r\n MDTM\r\n SIZE\r\n \
          REST STREAM\r\n MLST type*;size*;modify*;perm*;unique*;\r\n TVFS\r\n UTF8\r\n HOST\r\n\
          211 End\r\n",
    );
    session.extend_from_slice(b"200 PBSZ 0 successful\r\n200 Protection set to Private\r\n");
    session.extend_from_slice(b"331 Password required for alice\r\n230 User alice logged in\r\n");
    session.extend_from_slice(
        b"200 Type set to I\r\n257 \"/home/alice\" is the current directory\r\n",
    );
    // 220, 234, 211 (FEAT), 200, 200, 331, 230, 200, 257.
    let mut replies = 9;
    // A STAT-style listing on the control channel.
    session.extend_from_slice(b"213-Status of /home/alice:\r\n");
    for i in 0..40 {
        let line = format!(
            "-rw-r--r--   1 alice    users      {:>8} Mar 21 12:{:02} file-{i:04}.dat\r\n",
            1000 + i * 37,
            i % 60
        );
        session.extend_from_slice(line.as_bytes());
    }
    session.extend_from_slice(b"213 End of status\r\n");
    replies += 1;
    for i in 0..20 {
        let passive = format!("229 Entering Extended Passive Mode (|||{}|)\r\n", 40000 + i);
        session.extend_from_slice(passive.as_bytes());
        session.extend_from_slice(b"150 Opening BINARY mode data connection for file.dat\r\n");
        session.extend_from_slice(b"226 Transfer complete\r\n");
        replies += 3;
    }
    session.extend_from_slice(b"221 Goodbye.\r\n");
    replies += 1;

    let copies = TARGET_STREAM_LEN.div_ceil(session.len());
    (session.repeat(copies), replies * copies)
}

fn parse_in_chunks(stream: &[u8], chunk_len: usize) -> usize {
    let mut parser = ReplyParser::new(ReplyLimits::default());
    let mut count = 0;
    for chunk in stream.chunks(chunk_len) {
        parser.push(chunk);
        while let Some(reply) = parser.next_reply() {
            black_box(reply.expect("benchmark stream is well-formed"));
            count += 1;
        }
    }
    count
}

fn bench_reply_parser(c: &mut Criterion) {
    let (stream, expected_replies) = realistic_stream();
    assert_eq!(parse_in_chunks(&stream, SEGMENT), expected_replies);
    assert_eq!(parse_in_chunks(&stream, stream.len()), expected_replies);

    let mut group = c.benchmark_group("reply_parser");
    group.throughput(Throughput::Bytes(stream.len() as u64));
    group.bench_function("chunks_1460", |b| {
        b.iter(|| parse_in_chunks(black_box(&stream), SEGMENT));
    });
    group.bench_function("one_chunk", |b| {
        b.iter(|| parse_in_chunks(black_box(&stream), stream.len()));
    });
    group.finish();
}

/// Every benchmark of this file (what `criterion_group!` would generate, but documented).
fn benches() {
    let mut criterion = Criterion::default().sample_size(20).configure_from_args();
    bench_reply_parser(&mut criterion);
}

criterion_main!(benches);
