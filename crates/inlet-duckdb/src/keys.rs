//! The keys a table holds, as DuckDB's 64-bit hashes: what lets an upsert append rows whose
//! key is certainly new instead of joining them against the whole table.
//!
//! DuckDB tables carry no primary-key index (maintaining one costs more than the rest of the
//! load, see docs/performance.md), so without this set every upsert would have to scan the
//! table to tell inserts from updates. A hash absent from the set is a key absent from the
//! table; a hash present is a key that is probably there (two keys share a hash about once in
//! 2^64 / rows lookups), and such rows take the exact path that compares keys.

/// A sorted set of hashes: 8 bytes per row, exact membership of hashes.
#[derive(Debug, Default)]
pub(crate) struct KeyHashes {
    sorted: Vec<u64>,
}

impl KeyHashes {
    /// The set of `hashes`, in any order.
    pub(crate) fn from_unsorted(mut hashes: Vec<u64>) -> Self {
        hashes.sort_unstable();
        hashes.dedup();
        KeyHashes { sorted: hashes }
    }

    /// Whether a key with hash `hash` may be in the table.
    pub(crate) fn may_hold(&self, hash: u64) -> bool {
        self.sorted.binary_search(&hash).is_ok()
    }

    /// Adds `hashes` (any order, repeats allowed): one merge pass, from the back, in place.
    pub(crate) fn insert_all(&mut self, mut hashes: Vec<u64>) {
        hashes.sort_unstable();
        hashes.dedup();
        hashes.retain(|h| !self.may_hold(*h));
        let old = self.sorted.len();
        self.sorted.resize(old + hashes.len(), 0);
        let (mut from, mut to) = (old, self.sorted.len());
        while let Some(&newest) = hashes.last() {
            to -= 1;
            if from > 0 && self.sorted[from - 1] > newest {
                from -= 1;
                self.sorted[to] = self.sorted[from];
            } else {
                self.sorted[to] = newest;
                hashes.pop();
            }
        }
    }

    /// How many hashes the set holds.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.sorted.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cheap deterministic stream of well-spread numbers.
    fn spread(seed: u64, n: usize) -> Vec<u64> {
        (0..n as u64).map(|i| (i + seed).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17)).collect()
    }

    #[test]
    fn holds_exactly_what_was_inserted_across_merges() {
        let mut set = KeyHashes::from_unsorted(spread(0, 1_000));
        for round in 1..20 {
            set.insert_all(spread(round * 500, 1_000));
        }
        let inserted: std::collections::BTreeSet<u64> = (0..20).flat_map(|r| spread(r * 500, 1_000)).collect();
        assert_eq!(set.len(), inserted.len());
        assert!(set.sorted.windows(2).all(|w| w[0] < w[1]), "stays sorted without repeats");
        assert!(inserted.iter().all(|h| set.may_hold(*h)));
        assert!(spread(1_000_000, 1_000).iter().all(|h| !set.may_hold(*h)));
    }

    #[test]
    fn merges_at_both_ends_and_ignores_repeats() {
        let mut set = KeyHashes::from_unsorted(vec![50, 10, 30, 30]);
        set.insert_all(vec![60, 0, 30, 20, 60]);
        assert_eq!(set.sorted, vec![0, 10, 20, 30, 50, 60]);
        set.insert_all(Vec::new());
        assert_eq!(set.len(), 6);
        let mut empty = KeyHashes::default();
        empty.insert_all(vec![3, 1, 2]);
        assert_eq!(empty.sorted, vec![1, 2, 3]);
    }
}
