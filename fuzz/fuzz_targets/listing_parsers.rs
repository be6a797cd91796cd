//! The listing parsers fed arbitrary bytes: never panic; an accepted MLSx entry or canonical
//! `ls -l` line is a fixed point of parse → encode; the bounded line splitter gives the same lines under
//! any chunking. The first byte picks the parser.
#![no_main]

use ftps_proto::codec::listing::{self, ListLine, ListingLines};
use libfuzzer_sys::fuzz_target;

fn split(chunks: &mut dyn Iterator<Item = &[u8]>) -> Vec<Result<Vec<u8>, String>> {
    let mut lines = ListingLines::new(64);
    let mut out = Vec::new();
    for chunk in chunks {
        lines.push(chunk);
        while let Some(line) = lines.next_line() {
            out.push(line.map_err(|e| format!("{e:?}")));
        }
    }
    lines.finish();
    while let Some(line) = lines.next_line() {
        out.push(line.map_err(|e| format!("{e:?}")));
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, text)) = data.split_first() else {
        return;
    };
    match which % 3 {
        0 => {
            for parse in [listing::parse_mlsx_entry, listing::parse_mlst_entry] {
                if let Ok(entry) = parse(text) {
                    let mut wire = Vec::new();
                    if entry.encode(&mut wire).is_ok() {
                        assert_eq!(listing::parse_mlsx_entry(&wire).as_ref(), Ok(&entry));
                    }
                }
            }
        }
        1 => {
            let whole = split(&mut std::iter::once(text));
            let step = usize::from(which / 3 % 11) + 1;
            assert_eq!(
                whole,
                split(&mut text.chunks(step)),
                "chunking changed the lines"
            );
            for line in whole.into_iter().flatten() {
                if let ListLine::Entry(entry) = listing::parse_list_line(&line) {
                    let mut wire = Vec::new();
                    if entry.encode(&mut wire).is_ok() {
                        // The encoder fills absent columns (links 1, owner/group `ftp`), so the
                        // canonical line is a fixed point rather than the original entry.
                        let ListLine::Entry(again) = listing::parse_list_line(&wire) else {
                            panic!("canonical line does not parse: {wire:?}");
                        };
                        let mut rewire = Vec::new();
                        again
                            .encode(&mut rewire)
                            .expect("a parsed canonical line encodes");
                        assert_eq!(rewire, wire, "canonical form must be a fixed point");
                    }
                }
            }
        }
        _ => {
            let _ = listing::parse_mlst_feature_facts(text);
            let _ = listing::parse_opts_mlst_facts(text);
            let _ = listing::FtpTime::parse(text);
        }
    }
});
