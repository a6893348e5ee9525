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

/// A set of hashes, kept sorted: 8 bytes per row and a little, exact membership of hashes.
///
/// Hashes are added a piece at a time, and keys are random, so a piece's hashes land all over
/// the set: merging each piece into one sorted run would rewrite the whole run every time, a
/// cost that grows with the table and that smaller pieces pay more often. New hashes are
/// merged into a short run of their own instead, and that run into the long one once it holds
/// an eighth as many: a piece rewrites the short run only, and the long run is rewritten once
/// for every eighth of its size added. The long run is held in chunks of one size, which the
/// allocator hands out again as the run is rewritten: one growing vector left its outgrown
/// copies resident for a while (adding 1,000,000 keys in pieces of 3,125, a test program
/// peaked at 35 MB that way and at 23 MB in chunks).
#[derive(Debug, Default)]
pub struct KeyHashes {
    /// The long run: each chunk sorted and below the next one, every one but the last full.
    settled: Vec<Vec<u64>>,
    /// Added since the last merge into `settled`, sorted; at most an eighth as many, or a few
    /// thousand while `settled` is short.
    recent: Vec<u64>,
}

/// `recent` is merged into `settled` once it is longer than `settled / RECENT_SHARE`...
const RECENT_SHARE: usize = 8;
/// ... or than this, while `settled` is short.
const RECENT_FLOOR: usize = 4_096;
/// Hashes in a chunk of `settled` (64 KiB).
const CHUNK: usize = 1 << 13;

impl KeyHashes {
    /// The set of `hashes`, in any order.
    pub fn from_unsorted(mut hashes: Vec<u64>) -> Self {
        hashes.sort_unstable();
        hashes.dedup();
        KeyHashes { settled: hashes.chunks(CHUNK).map(<[u64]>::to_vec).collect(), recent: Vec::new() }
    }

    /// Whether a key with hash `hash` may be in the table.
    #[cfg(test)]
    fn may_hold(&self, hash: u64) -> bool {
        self.settled.iter().any(|chunk| chunk.binary_search(&hash).is_ok()) || self.recent.binary_search(&hash).is_ok()
    }

    /// Takes a piece's keys into the set, by their hashes (`None`: a key that can't be hashed),
    /// and tells for each row whether it can be written straight into the table: its key is
    /// certainly not stored, and no other row of the piece has it (those must be merged to keep
    /// the newest). The keys count as stored from now on, written or not: a key held but not
    /// stored only sends a row down the exact path, as a collision does.
    pub fn admit(&mut self, hashes: &[Option<u64>]) -> Vec<bool> {
        // The piece's hashes in order, looked up in one forward sweep of each run.
        let mut order: Vec<(u64, usize)> = hashes.iter().enumerate().filter_map(|(i, h)| Some(((*h)?, i))).collect();
        order.sort_unstable();
        let mut new = vec![false; hashes.len()];
        let mut added = Vec::with_capacity(order.len());
        let (mut in_settled, mut in_recent) = ((0, 0), 0);
        for (j, &(hash, row)) in order.iter().enumerate() {
            if j > 0 && order[j - 1].0 == hash {
                continue;
            }
            in_recent = seek(&self.recent, in_recent, hash);
            let held = find(&self.settled, &mut in_settled, hash) || self.recent.get(in_recent) == Some(&hash);
            let repeated = order.get(j + 1).is_some_and(|next| next.0 == hash);
            new[row] = !held && !repeated;
            if !held {
                added.push(hash);
            }
        }
        merge_into(&mut self.recent, added);
        if self.recent.len() > RECENT_FLOOR.max(self.settled_len() / RECENT_SHARE) {
            self.settle();
        }
        new
    }

    /// Hashes in `settled`: its chunks are full but the last.
    fn settled_len(&self) -> usize {
        self.settled.last().map_or(0, |last| (self.settled.len() - 1) * CHUNK + last.len())
    }

    /// Merges `recent` into `settled`, chunk by chunk: each old chunk is freed once merged.
    fn settle(&mut self) {
        let mut merged = Vec::with_capacity((self.settled_len() + self.recent.len()).div_ceil(CHUNK));
        let mut out = Vec::with_capacity(CHUNK);
        let mut push = |hash: u64, out: &mut Vec<u64>| {
            out.push(hash);
            if out.len() == CHUNK {
                merged.push(std::mem::replace(out, Vec::with_capacity(CHUNK)));
            }
        };
        let mut recent = self.recent.iter().copied().peekable();
        for chunk in std::mem::take(&mut self.settled) {
            for stored in chunk {
                while let Some(hash) = recent.next_if(|&hash| hash < stored) {
                    push(hash, &mut out);
                }
                push(stored, &mut out);
            }
        }
        recent.for_each(|hash| push(hash, &mut out));
        if !out.is_empty() {
            merged.push(out);
        }
        self.settled = merged;
        self.recent.clear();
    }

    /// How many hashes the set holds.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.settled_len() + self.recent.len()
    }
}

/// Whether `hash` is in `chunks`, searched from `cursor` (a chunk and a position in it) on: a
/// piece's hashes, looked up in order, move the cursor forward only.
fn find(chunks: &[Vec<u64>], cursor: &mut (usize, usize), hash: u64) -> bool {
    while let Some(chunk) = chunks.get(cursor.0) {
        if chunk.last().is_some_and(|&last| last >= hash) {
            cursor.1 = seek(chunk, cursor.1, hash);
            return chunk[cursor.1] == hash;
        }
        *cursor = (cursor.0 + 1, 0);
    }
    false
}

/// Merges `hashes` (sorted, none of them in `sorted`) into `sorted`: one pass from the back,
/// in place.
fn merge_into(sorted: &mut Vec<u64>, mut hashes: Vec<u64>) {
    let old = sorted.len();
    sorted.resize(old + hashes.len(), 0);
    let (mut from, mut to) = (old, sorted.len());
    while let Some(&newest) = hashes.last() {
        to -= 1;
        if from > 0 && sorted[from - 1] > newest {
            from -= 1;
            sorted[to] = sorted[from];
        } else {
            sorted[to] = newest;
            hashes.pop();
        }
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
/// [`KeyHashes::admit`]) is `take`: the rows to write straight into the table, or those
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

    /// Every one of `hashes`, as a piece of rows.
    fn piece(hashes: &[u64]) -> Vec<Option<u64>> {
        hashes.iter().copied().map(Some).collect()
    }

    impl KeyHashes {
        /// Every hash held, in order.
        fn all(&self) -> Vec<u64> {
            let mut all = self.settled.concat();
            all.extend(&self.recent);
            all.sort_unstable();
            all
        }
    }

    #[test]
    fn holds_exactly_what_was_inserted_across_merges() {
        let mut set = KeyHashes::from_unsorted(spread(0, 1_000));
        for round in 1..20 {
            set.admit(&piece(&spread(round * 500, 1_000)));
        }
        let inserted: std::collections::BTreeSet<u64> = (0..20).flat_map(|r| spread(r * 500, 1_000)).collect();
        assert_eq!(set.len(), inserted.len());
        for run in [set.settled.concat(), set.recent.clone()] {
            assert!(run.windows(2).all(|w| w[0] < w[1]), "each run stays sorted without repeats");
        }
        assert!(set.settled_len() > 1_000 && set.recent.len() <= RECENT_FLOOR, "the short run was merged");
        assert!(inserted.iter().all(|h| set.may_hold(*h)));
        assert!(spread(1_000_000, 1_000).iter().all(|h| !set.may_hold(*h)));
    }

    #[test]
    fn a_large_set_grows_by_short_runs_and_finds_keys_in_either() {
        let mut set = KeyHashes::from_unsorted(spread(0, 100_000));
        let mut inserted: std::collections::BTreeSet<u64> = spread(0, 100_000).into_iter().collect();
        for round in 1..=40 {
            let hashes = spread(round * 1_000_000, 3_125);
            inserted.extend(&hashes);
            assert!(set.admit(&piece(&hashes)).iter().all(|new| *new), "round {round}: new keys");
            assert!(set.recent.len() <= RECENT_FLOOR.max(set.settled_len() / RECENT_SHARE), "round {round}");
        }
        assert!(set.settled_len() > 100_000, "the short run was merged into the long one");
        assert!(!set.recent.is_empty(), "and started again");
        assert_eq!(set.all(), inserted.iter().copied().collect::<Vec<_>>());
        let long = set.settled.concat();
        assert!(long.windows(2).all(|w| w[0] < w[1]) && long.len() == set.settled_len());
        assert!(set.settled.len() > 2 && set.settled.iter().rev().skip(1).all(|c| c.len() == CHUNK), "full chunks");
        // Stored keys of either run and of two chunks, a key new to both, a key the piece holds twice.
        let (first_chunk, second_chunk, from_recent) = (set.settled[0][500], set.settled[1][3], set.recent[7]);
        let fresh = spread(7_777_777, 1)[0];
        let twice = spread(8_888_888, 1)[0];
        let piece = [Some(twice), Some(from_recent), Some(fresh), Some(second_chunk), Some(first_chunk), Some(twice)];
        assert_eq!(set.admit(&piece), [false, false, true, false, false, false]);
        assert!(set.may_hold(fresh) && set.may_hold(twice), "held from now on");
        assert_eq!(set.admit(&[Some(fresh)]), [false], "so not new a second time");
    }

    #[test]
    fn merges_at_both_ends_and_ignores_repeats() {
        let mut set = KeyHashes::from_unsorted(vec![50, 10, 30, 30]);
        set.admit(&piece(&[60, 0, 30, 20, 60]));
        assert_eq!(set.all(), vec![0, 10, 20, 30, 50, 60]);
        set.admit(&[]);
        assert_eq!(set.len(), 6);
        let mut empty = KeyHashes::default();
        assert_eq!(empty.len(), 0);
        empty.admit(&piece(&[3, 1, 2]));
        assert_eq!(empty.all(), vec![1, 2, 3]);
    }

    #[test]
    fn only_unstored_keys_that_a_piece_holds_once_are_certainly_new() {
        let mut held = KeyHashes::from_unsorted(vec![10, 20]);
        let piece = [Some(10), Some(30), Some(40), Some(30), None, Some(50)];
        let new = held.admit(&piece);
        assert_eq!(new, [false, false, true, false, false, true]);
        assert_eq!(held.all(), [10, 20, 30, 40, 50], "the piece's keys are held, once each");
        let rows: Vec<Row> = (0..6).map(|i| Row { values: vec![Value::Int(i)], deleted: i == 5 }).collect();
        let direct: Vec<(&[Value], bool)> = rows_where(&rows, &new, true).collect();
        assert_eq!(direct, [(&[Value::Int(2)][..], false), (&[Value::Int(5)][..], true)]);
        assert_eq!(rows_where(&rows, &new, false).count(), 4, "the others are merged");
    }

    #[test]
    fn lookups_in_one_sweep_agree_with_searching_the_whole_set() {
        let mut held = KeyHashes::from_unsorted(spread(0, 50_000));
        for seek_from in [0, 1, 7, 49_999, 50_000] {
            let run = held.settled.concat();
            for hash in [0, 1, run[0], run[17], run[49_999], u64::MAX] {
                let from = seek_from.min(run.partition_point(|&s| s < hash));
                assert_eq!(seek(&run, from, hash), run.partition_point(|&s| s < hash));
            }
        }
        // A piece of stored and new keys, some repeated, some unhashable, in no order.
        let mut piece: Vec<Option<u64>> = spread(40_000, 20_000).into_iter().map(Some).collect();
        piece.extend(spread(90_000, 50).into_iter().map(Some));
        piece.extend([None, piece[3], piece[15_000], None]);
        piece.reverse();
        let mut times = std::collections::HashMap::new();
        for hash in piece.iter().flatten() {
            *times.entry(*hash).or_insert(0) += 1;
        }
        let expected: Vec<bool> =
            piece.iter().map(|h| h.is_some_and(|h| times[&h] == 1 && !held.may_hold(h))).collect();
        let new = held.admit(&piece);
        for (i, (new, expected)) in new.iter().zip(&expected).enumerate() {
            assert_eq!(new, expected, "row {i}");
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
