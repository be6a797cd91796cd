//! The server's command parser (Telnet handling included) fed arbitrary bytes: never panics,
//! any chunking gives the same commands, and every parsed command survives encode → parse.
#![no_main]

use ftps_proto::codec::command::{Command, CommandLimits, CommandParser};
use libfuzzer_sys::fuzz_target;

fn parse_all(chunks: &mut dyn Iterator<Item = &[u8]>) -> Vec<Result<Command, String>> {
    let mut parser = CommandParser::new(CommandLimits { max_line_len: 96 });
    let mut out = Vec::new();
    for chunk in chunks {
        parser.push(chunk);
        while let Some(item) = parser.next_command() {
            out.push(item.map_err(|e| format!("{e:?}")));
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, data)) = data.split_first() else {
        return;
    };
    let whole = parse_all(&mut std::iter::once(data));
    let step = usize::from(split % 13) + 1;
    let chunked = parse_all(&mut data.chunks(step));
    assert_eq!(
        format!("{whole:?}"),
        format!("{chunked:?}"),
        "chunking changed the result"
    );
    for command in whole.into_iter().flatten() {
        let mut wire = Vec::new();
        if command.encode(&mut wire).is_ok() {
            assert!(wire.ends_with(b"\r\n"), "encoder ends lines with CRLF");
            // The wire form doubles 0xFF (RFC 3659 §2.2); the parser undoes that in its Telnet
            // layer, so run the line through a parser rather than `Command::parse`.
            let mut parser = CommandParser::new(CommandLimits {
                max_line_len: 1 << 16,
            });
            parser.push(&wire);
            let again = parser.next_command().expect("one line in, one command out");
            assert_eq!(
                again.ok().as_ref(),
                Some(&command),
                "encode → parse changed {command:?}"
            );
        }
    }
});
