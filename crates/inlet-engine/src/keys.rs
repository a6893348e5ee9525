//! The keys a table holds, as 64-bit hashes: what lets a destination write rows whose key is
//! certainly new straight into the table, instead of staging them and merging them.
//!
//! A hash absent from the set is a key absent from the table; a hash present is a key that is
//! probably there (two keys share a hash about once in 2^64 / rows lookups), and such rows take
//! the destination's exact merge. Each destination turns a key into [`KeyScalar`]s as it
//! stores them, on both sides, and [`key_hash`] hashes them. The set is read from the table
//! again in every session: hashes are only compared within one process, so a fast hash with a
//! fixed seed serves, and a collision only sends a row down the exact path.

use std::hash::{BuildHasher, Hash, Hasher};

use inlet_sdk::Value;

use crate::destination::Row;

/// One value of a key as a destination stores it.
#[derive(Clone, Copy, Debug, Hash)]
pub enum KeyScalar<'a> {
    /// Integers, booleans, days, microseconds.
    Whole(i64),
    /// A decimal's digits at its column's scale.
    Wide(i128),
    /// Text and bytes.
    Bytes(&'a [u8]),
}

/// The hash of a key, given as its values in key order; `None` as soon as one is `None` (a
/// value the destination can't compare exactly, or a stored `NULL`), for the row then takes
/// the exact path or, stored, can't equal a staged key.
pub fn key_hash<'a>(key: impl IntoIterator<Item = Option<KeyScalar<'a>>>) -> Option<u64> {
    let mut hasher = foldhash::quality::FixedState::with_seed(0x1e7).build_hasher();
    for scalar in key {
        scalar?.hash(&mut hasher);
    }
    Some(hasher.finish())
}

/// Whether reading every stored key of a table, to tell which staged rows are certainly new,
/// is worth it: when the rows staged for the table in this session (`staged`) are at least one
/// for every `stored_per_staged` rows it holds (`stored`). Below that, as when a sync changes
/// a few rows of a big table, merging them costs less than reading every key; what the keys
/// cost next to a merge is the destination's own figure.
pub fn worth_reading_keys(staged: usize, stored: u64, stored_per_staged: u64) -> bool {
    (staged as u64).saturating_mul(stored_per_staged) >= stored
}

/// A sorted set of hashes: 8 bytes per row, exact membership of hashes.
#[derive(Debug, Default)]
pub struct KeyHashes {
    sorted: Vec<u64>,
}

impl KeyHashes {
    /// The set of `hashes`, in any order.
    pub fn from_unsorted(mut hashes: Vec<u64>) -> Self {
        hashes.sort_unstable();
        hashes.dedup();
        hashes.shrink_to_fit();
        KeyHashes { sorted: hashes }
    }

    /// Whether a key with hash `hash` may be in the table.
    #[cfg(test)]
    fn may_hold(&self, hash: u64) -> bool {
        self.sorted.binary_search(&hash).is_ok()
    }

    /// For each row of a piece, by its key's hash (`None`: the key can't be hashed), whether
    /// the row can be written straight into the table: its key is certainly not stored, and no
    /// other row of the piece has it (those must be merged to keep the newest).
    pub fn certainly_new(&self, hashes: &[Option<u64>]) -> Vec<bool> {
        // The piece's hashes in order, looked up in one forward sweep of the set.
        let mut order: Vec<(u64, usize)> = hashes.iter().enumerate().filter_map(|(i, h)| Some(((*h)?, i))).collect();
        order.sort_unstable();
        let mut new = vec![false; hashes.len()];
        let mut at = 0;
        for (j, &(hash, row)) in order.iter().enumerate() {
            let repeated = (j > 0 && order[j - 1].0 == hash) || order.get(j + 1).is_some_and(|next| next.0 == hash);
            at = seek(&self.sorted, at, hash);
            new[row] = !repeated && self.sorted.get(at) != Some(&hash);
        }
        new
    }

    /// Adds `hashes` (any order, repeats allowed): one merge pass, from the back, in place.
    pub fn insert_all(&mut self, mut hashes: Vec<u64>) {
        hashes.sort_unstable();
        hashes.dedup();
        let mut at = 0;
        hashes.retain(|&hash| {
            at = seek(&self.sorted, at, hash);
            self.sorted.get(at) != Some(&hash)
        });
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

/// The position of the first of `sorted` not below `hash`, searched from `from` (at or before
/// it) by doubling steps: a piece's hashes, looked up in order, each cost a few probes near
/// the last one instead of a search of the whole set, most of which would miss the cache.
fn seek(sorted: &[u64], from: usize, hash: u64) -> usize {
    let mut step = 1;
    let mut below = from;
    while below + step < sorted.len() && sorted[below + step] < hash {
        below += step;
        step *= 2;
    }
    let end = (below + step + 1).min(sorted.len());
    below + sorted[below..end].partition_point(|&s| s < hash)
}

/// The values and deleted flags of the `rows` whose flag in `new` (from
/// [`KeyHashes::certainly_new`]) is `take`: the rows to write straight into the table, or those
/// to merge.
pub fn rows_where<'a>(rows: &'a [Row], new: &'a [bool], take: bool) -> impl Iterator<Item = (&'a [Value], bool)> {
    rows.iter().zip(new).filter(move |(_, n)| **n == take).map(|(r, _)| (r.values.as_slice(), r.deleted))
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
        assert_eq!(empty.len(), 0);
        empty.insert_all(vec![3, 1, 2]);
        assert_eq!(empty.sorted, vec![1, 2, 3]);
    }

    #[test]
    fn only_unstored_keys_that_a_piece_holds_once_are_certainly_new() {
        let held = KeyHashes::from_unsorted(vec![10, 20]);
        let piece = [Some(10), Some(30), Some(40), Some(30), None, Some(50)];
        let new = held.certainly_new(&piece);
        assert_eq!(new, [false, false, true, false, false, true]);
        let rows: Vec<Row> = (0..6).map(|i| Row { values: vec![Value::Int(i)], deleted: i == 5 }).collect();
        let direct: Vec<(&[Value], bool)> = rows_where(&rows, &new, true).collect();
        assert_eq!(direct, [(&[Value::Int(2)][..], false), (&[Value::Int(5)][..], true)]);
        assert_eq!(rows_where(&rows, &new, false).count(), 4, "the others are merged");
    }

    #[test]
    fn lookups_in_one_sweep_agree_with_searching_the_whole_set() {
        let held = KeyHashes::from_unsorted(spread(0, 50_000));
        for seek_from in [0, 1, 7, 49_999, 50_000] {
            for hash in [0, 1, held.sorted[0], held.sorted[17], held.sorted[49_999], u64::MAX] {
                let from = seek_from.min(held.sorted.partition_point(|&s| s < hash));
                assert_eq!(seek(&held.sorted, from, hash), held.sorted.partition_point(|&s| s < hash));
            }
        }
        // A piece of stored and new keys, some repeated, some unhashable, in no order.
        let mut piece: Vec<Option<u64>> = spread(40_000, 20_000).into_iter().map(Some).collect();
        piece.extend(spread(90_000, 50).into_iter().map(Some));
        piece.extend([None, piece[3], piece[15_000], None]);
        piece.reverse();
        let new = held.certainly_new(&piece);
        let mut times = std::collections::HashMap::new();
        for hash in piece.iter().flatten() {
            *times.entry(*hash).or_insert(0) += 1;
        }
        for (i, hash) in piece.iter().enumerate() {
            let expected = hash.is_some_and(|h| times[&h] == 1 && !held.may_hold(h));
            assert_eq!(new[i], expected, "row {i}");
        }
        // 10,000 of the 20,000 are stored; of the two repeated keys, one is new.
        assert_eq!(new.iter().filter(|n| **n).count(), 10_000 + 50 - 1);
    }

    #[test]
    fn a_key_hashes_by_its_values_in_order_and_not_at_all_with_one_missing() {
        let ann = [Some(KeyScalar::Whole(7)), Some(KeyScalar::Bytes(b"Ann"))];
        assert_eq!(key_hash(ann), key_hash([Some(KeyScalar::Whole(7)), Some(KeyScalar::Bytes(b"Ann"))]));
        assert_ne!(key_hash(ann), key_hash([Some(KeyScalar::Bytes(b"Ann")), Some(KeyScalar::Whole(7))]));
        assert_ne!(key_hash([Some(KeyScalar::Whole(7))]), key_hash([Some(KeyScalar::Wide(7))]));
        assert_eq!(key_hash([Some(KeyScalar::Whole(7)), None]), None);
    }

    #[test]
    fn keys_are_read_when_the_session_stages_enough_next_to_the_table() {
        assert!(worth_reading_keys(0, 0, 100), "an empty table: every key is new");
        assert!(worth_reading_keys(25_000, 1_000_000, 100));
        assert!(!worth_reading_keys(25_000, 1_000_000, 4));
        assert!(!worth_reading_keys(10, 1_000_000, 100), "a few changes to a big table are merged");
    }
}
