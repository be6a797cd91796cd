//! TYPE A conversion, in one place: the server's files use bare LF line ends, the network form
//! is CRLF (RFC 959 §3.1.1.1).

use alloc::vec::Vec;

/// Network → local: every CRLF becomes LF; a bare CR is kept. A CR at the end of a chunk is
/// held until the next chunk shows whether an LF follows, so any chunking gives one result.
#[derive(Debug, Default, Clone)]
pub(crate) struct AsciiDecoder {
    held_cr: bool,
}

impl AsciiDecoder {
    /// Appends the local form of `input` to `out`.
    pub(crate) fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) {
        for &byte in input {
            if self.held_cr {
                self.held_cr = false;
                if byte != b'\n' {
                    out.push(b'\r');
                }
            }
            if byte == b'\r' {
                self.held_cr = true;
            } else {
                out.push(byte);
            }
        }
    }

    /// End of input: a held CR was a bare CR.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) {
        if core::mem::take(&mut self.held_cr) {
            out.push(b'\r');
        }
    }
}

/// Local → network: every LF becomes CRLF. Converts as much of `input` as fits in `room`
/// output bytes and returns how many input bytes it consumed.
pub(crate) fn encode_ascii(input: &[u8], room: usize, out: &mut Vec<u8>) -> usize {
    let mut used = 0;
    for (index, &byte) in input.iter().enumerate() {
        let need = if byte == b'\n' { 2 } else { 1 };
        if used + need > room {
            return index;
        }
        if byte == b'\n' {
            out.push(b'\r');
        }
        out.push(byte);
        used += need;
    }
    input.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_chunks(chunks: &[&[u8]]) -> Vec<u8> {
        let mut decoder = AsciiDecoder::default();
        let mut out = Vec::new();
        for chunk in chunks {
            decoder.decode(chunk, &mut out);
        }
        decoder.finish(&mut out);
        out
    }

    #[test]
    fn crlf_becomes_lf_and_bare_cr_stays() {
        assert_eq!(decode_chunks(&[b"a\r\nb\rc\r"]), b"a\nb\rc\r");
        assert_eq!(decode_chunks(&[b"a\r", b"\nb"]), b"a\nb");
        let mut out = Vec::new();
        assert_eq!(encode_ascii(b"a\nb", 100, &mut out), 3);
        assert_eq!(out, b"a\r\nb");
        out.clear();
        // An LF never gets split from its CR.
        assert_eq!(encode_ascii(b"a\nb", 2, &mut out), 1);
        assert_eq!(out, b"a");
    }

    proptest! {
        #[test]
        fn decoding_is_split_invariant(data in proptest::collection::vec(
            prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'x')], 0..64), cut in 0usize..64) {
            let cut = cut.min(data.len());
            prop_assert_eq!(decode_chunks(&[&data]), decode_chunks(&[&data[..cut], &data[cut..]]));
        }

        #[test]
        fn encode_then_decode_round_trips_lf_text(data in proptest::collection::vec(
            prop_oneof![Just(b'\n'), Just(b'x'), Just(b' ')], 0..64)) {
            let mut wire = Vec::new();
            prop_assert_eq!(encode_ascii(&data, usize::MAX, &mut wire), data.len());
            prop_assert_eq!(decode_chunks(&[&wire]), data);
        }
    }
}
