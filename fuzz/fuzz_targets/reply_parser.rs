//! The reply parser fed arbitrary bytes: never panics, and any chunking gives the same replies
//! (split invariance), including errors and recovery.
#![no_main]

use ftps_proto::codec::reply::{ReplyLimits, ReplyParser};
use libfuzzer_sys::fuzz_target;

fn parse_all(chunks: &mut dyn Iterator<Item = &[u8]>) -> Vec<String> {
    // Small limits so the fuzzer reaches the line-length and line-count errors quickly.
    let mut parser = ReplyParser::new(ReplyLimits {
        max_line_len: 64,
        max_lines: 8,
        max_reply_bytes: 300,
    });
    let mut out = Vec::new();
    for chunk in chunks {
        parser.push(chunk);
        while let Some(item) = parser.next_reply() {
            out.push(format!("{item:?}"));
            if let Ok(reply) = item {
                // Whatever the parser accepted, the encoder either writes or refuses with a
                // typed error (a bare CR inside a line is refused).
                let _ = reply.encode(&mut Vec::new());
            }
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, data)) = data.split_first() else {
        return;
    };
    let whole = parse_all(&mut std::iter::once(data));
    let step = usize::from(split % 17) + 1;
    let chunked = parse_all(&mut data.chunks(step));
    assert_eq!(whole, chunked, "chunking changed the result");
});
