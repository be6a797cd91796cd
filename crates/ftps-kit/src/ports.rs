//! Which ports a passive data listener tries when the server is limited to a port range.
//!
//! The search starts at a port derived from the data connection's [`DataId`], so consecutive
//! transfers spread over the range instead of all probing its first ports; it then walks the
//! whole range once, wrapping around. Binding is the driver's: it tries each port of a
//! [`PortOrder`] until one is free.

use std::iter::FusedIterator;
use std::ops::RangeInclusive;

use ftps_proto::io::DataId;

/// The passive port range is empty (its start is above its end).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("empty passive port range")]
pub struct EmptyPortRange;

/// The ports of a range, each once, in the order a listener for one data connection tries
/// them.
#[derive(Debug, Clone)]
pub struct PortOrder {
    first: u32,
    count: u32,
    start: u32,
    step: u32,
}

impl PortOrder {
    /// The order for data connection `data` within `range`.
    pub fn new(data: DataId, range: RangeInclusive<u16>) -> Result<Self, EmptyPortRange> {
        Self::with_seed(data.get(), range)
    }

    /// The order starting at the port `seed` selects (modulo the range's size).
    fn with_seed(seed: u32, range: RangeInclusive<u16>) -> Result<Self, EmptyPortRange> {
        let (first, last) = (u32::from(*range.start()), u32::from(*range.end()));
        if first > last {
            return Err(EmptyPortRange);
        }
        let count = last - first + 1;
        Ok(Self {
            first,
            count,
            start: seed % count,
            step: 0,
        })
    }
}

impl Iterator for PortOrder {
    type Item = u16;

    fn next(&mut self) -> Option<u16> {
        if self.step >= self.count {
            return None;
        }
        let port = self.first + (self.start + self.step) % self.count;
        self.step += 1;
        // Always within the u16 range the order was made from.
        Some(u16::try_from(port).unwrap_or(u16::MAX))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::try_from(self.count - self.step).unwrap_or(usize::MAX);
        (left, Some(left))
    }
}

impl ExactSizeIterator for PortOrder {}
impl FusedIterator for PortOrder {}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(seed: u32, range: RangeInclusive<u16>) -> Vec<u16> {
        PortOrder::with_seed(seed, range).unwrap().collect()
    }

    #[test]
    fn starts_at_the_seed_and_wraps_around() {
        assert_eq!(order(0, 50000..=50003), [50000, 50001, 50002, 50003]);
        assert_eq!(order(2, 50000..=50003), [50002, 50003, 50000, 50001]);
        // The seed is taken modulo the range's size.
        assert_eq!(order(6, 50000..=50003), [50002, 50003, 50000, 50001]);
    }

    #[test]
    fn every_port_once() {
        for seed in 0..20 {
            let mut ports = order(seed, 60000..=60010);
            assert_eq!(ports.len(), 11);
            ports.sort_unstable();
            assert_eq!(ports, (60000..=60010).collect::<Vec<_>>());
        }
    }

    #[test]
    fn single_port_and_range_edges() {
        assert_eq!(order(7, 2121..=2121), [2121]);
        assert_eq!(order(1, 65534..=65535), [65535, 65534]);
        let whole = PortOrder::with_seed(u32::MAX, 0..=u16::MAX).unwrap();
        assert_eq!(whole.len(), 65536);
        assert_eq!(whole.clone().next(), Some(u16::MAX));
        assert_eq!(whole.count(), 65536);
    }

    #[test]
    fn empty_range_is_an_error() {
        #[allow(clippy::reversed_empty_ranges)]
        let empty = 50010..=50000;
        assert_eq!(PortOrder::with_seed(0, empty).unwrap_err(), EmptyPortRange);
        assert_eq!(EmptyPortRange.to_string(), "empty passive port range");
    }

    #[test]
    fn size_hint_counts_down() {
        let mut ports = PortOrder::with_seed(3, 1000..=1004).unwrap();
        assert_eq!(ports.len(), 5);
        ports.next();
        ports.next();
        assert_eq!(ports.len(), 3);
        ports.by_ref().for_each(drop);
        assert_eq!(ports.len(), 0);
        assert_eq!(ports.next(), None);
    }
}
