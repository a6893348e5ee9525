//! Counter-based randomness: every value is a pure function of `(seed, domain, key)`.
//!
//! A stateful RNG would force generating users in order; hashing a counter lets the
//! playground compute user `i`, or the fault of request `k`, without touching any other.

/// The SplitMix64 finalizer: a bijective, well-mixed 64-bit hash.
pub(crate) const fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Independent streams of draws; each domain gets its own so that adding a field to one
/// never shifts the values of another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub(crate) enum Domain {
    Person = 1,
    Revision = 2,
    Timing = 3,
    Ties = 4,
    Gaps = 5,
    Changes = 6,
    ManualChanges = 7,
    Faults = 8,
    Credentials = 9,
    Lag = 10,
}

/// A short deterministic sequence of draws for one `(seed, domain, key)`.
pub(crate) struct Draws(u64);

impl Draws {
    pub(crate) fn new(seed: u64, domain: Domain, key: u64) -> Self {
        Draws(mix64(seed ^ mix64((domain as u64) << 56 ^ mix64(key))))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix64(self.0)
    }

    /// Uniform in `0..n` (Lemire's multiply-shift; the bias is below 2^-40 for our `n`).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub(crate) fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub(crate) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_depend_on_every_part_of_the_key() {
        let base = Draws::new(1, Domain::Person, 7).next_u64();
        assert_eq!(base, Draws::new(1, Domain::Person, 7).next_u64());
        assert_ne!(base, Draws::new(2, Domain::Person, 7).next_u64());
        assert_ne!(base, Draws::new(1, Domain::Revision, 7).next_u64());
        assert_ne!(base, Draws::new(1, Domain::Person, 8).next_u64());
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut d = Draws::new(3, Domain::Timing, 0);
        let mut seen = [false; 7];
        for _ in 0..1000 {
            let v = d.below(7);
            assert!(v < 7);
            seen[v as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }
}
