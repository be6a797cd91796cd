//! Test payloads.

/// `len` pseudo-random bytes from `seed` (xorshift32): not one repeated byte and not periodic at
/// TLS record or socket buffer sizes, so a transfer that drops, repeats or reorders a chunk is
/// caught by a byte comparison. The same `(len, seed)` always gives the same bytes.
pub fn payload(len: usize, seed: u32) -> Vec<u8> {
    // xorshift32 never leaves 0, so mix the seed into a non-zero start.
    let mut state = 0x9e37_79b9_u32 ^ seed;
    if state == 0 {
        state = 1;
    }
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::payload;

    #[test]
    fn payload_is_deterministic_and_seed_dependent() {
        assert_eq!(payload(4096, 7), payload(4096, 7));
        assert_ne!(payload(4096, 7), payload(4096, 8));
        assert_eq!(payload(10, 0x9e37_79b9).len(), 10);
        let bytes = payload(1 << 16, 1);
        assert!(bytes.windows(2).any(|w| w[0] != w[1]));
        assert_ne!(bytes[..16384], bytes[16384..32768]);
    }
}
