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
use std::io;
use std::path::{Path, PathBuf};

use inlet_sdk::Value;

use crate::destination::{DestinationError, DestinationErrorKind, Row};

mod filter;
mod run;

use filter::Filter;
use run::{Lookup, Reader, Run, Source, merge};

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

/// A set of hashes that keeps little of itself in memory: 1.25 to 1.9 bytes a hash, and 512 KiB,
/// where a sorted array of them would hold 8 (a table of 3,000,000 keys, 24 MB).
///
/// The hashes themselves lie on disk, in sorted runs in unnamed temporary files: above them a
/// run of at most 65,536 in memory, and below it levels each 8 times the size of the one
/// above, as in a log-structured merge tree. A full recent run is merged into the first level
/// with room for it and the levels above, so each hash is rewritten a few times in all,
/// sequentially, and the levels stay few. A Bloom filter over every hash answers most lookups
/// of new keys alone; only hashes that pass it, stored keys and at most about one new key in
/// 100, read a block of each level.
///
/// A method that fails leaves the set holding at least what it held: a failed write can send
/// rows down the exact path, never a stored key straight into the table.
#[derive(Debug)]
pub struct KeyHashes {
    /// Where the levels' files are made.
    spill: PathBuf,
    /// Over every hash of `recent` and `levels`.
    filter: Filter,
    /// The hashes added last, sorted: at most `recent_limit`, unless writing them out failed.
    recent: Vec<u64>,
    /// Level `i` holds at most `recent_limit × GROWTH^(i + 1)` hashes, or nothing.
    levels: Vec<Option<Run>>,
    recent_limit: usize,
}

/// Hashes the recent run holds before it goes to disk (512 KiB).
const RECENT: usize = 65_536;
/// How much larger each level may grow than the one above.
const GROWTH: usize = 8;

impl KeyHashes {
    /// How many stored hashes to pass to [`Self::insert_stored`] at a time.
    pub const STORED_AT_ONCE: usize = RECENT;

    /// An empty set whose runs go to unnamed files in `spill`.
    pub fn new(spill: &Path) -> Self {
        Self::with_recent_limit(spill, RECENT)
    }

    fn with_recent_limit(spill: &Path, recent_limit: usize) -> Self {
        KeyHashes {
            spill: spill.to_owned(),
            filter: Filter::with_capacity(recent_limit),
            recent: Vec::new(),
            levels: Vec::new(),
            recent_limit,
        }
    }

    /// Takes hashes of stored keys, in any order, as a table's keys are read, and empties
    /// `hashes`. Each call merges them into the recent run: pass [`Self::STORED_AT_ONCE`] at a
    /// time, and the rest at the end.
    pub fn insert_stored(&mut self, hashes: &mut Vec<u64>) -> Result<(), DestinationError> {
        self.insert_unsorted_stored(hashes).map_err(|e| self.spill_failure(e))
    }

    fn insert_unsorted_stored(&mut self, hashes: &mut Vec<u64>) -> io::Result<()> {
        hashes.iter().for_each(|&hash| self.filter.insert(hash));
        self.recent.append(hashes);
        self.recent.sort_unstable();
        self.recent.dedup();
        self.settle()
    }

    /// Takes a piece's keys into the set, by their hashes (`None`: a key that can't be hashed),
    /// and tells for each row whether it can be written straight into the table: its key is
    /// certainly not stored, and no other row of the piece has it (those must be merged to keep
    /// the newest). The keys count as stored from now on, written or not: a key held but not
    /// stored only sends a row down the exact path, as a collision does.
    pub fn admit(&mut self, hashes: &[Option<u64>]) -> Result<Vec<bool>, DestinationError> {
        self.admit_piece(hashes).map_err(|e| self.spill_failure(e))
    }

    fn admit_piece(&mut self, hashes: &[Option<u64>]) -> io::Result<Vec<bool>> {
        // The piece's hashes in order, looked up in one forward sweep of each run.
        let mut order: Vec<(u64, usize)> = hashes.iter().enumerate().filter_map(|(i, h)| Some(((*h)?, i))).collect();
        order.sort_unstable();
        let mut new = vec![false; hashes.len()];
        let mut added = Vec::with_capacity(order.len());
        let mut levels: Vec<Lookup> = self.levels.iter().flatten().map(Lookup::new).collect();
        let mut in_recent = 0;
        for (j, &(hash, row)) in order.iter().enumerate() {
            if j > 0 && order[j - 1].0 == hash {
                continue;
            }
            let held = self.filter.may_hold(hash) && {
                in_recent = seek(&self.recent, in_recent, hash);
                self.recent.get(in_recent) == Some(&hash) || any_holds(&mut levels, hash)?
            };
            let repeated = order.get(j + 1).is_some_and(|next| next.0 == hash);
            new[row] = !held && !repeated;
            if !held {
                added.push(hash);
            }
        }
        drop(levels);
        added.iter().for_each(|&hash| self.filter.insert(hash));
        merge_into(&mut self.recent, added);
        self.settle()?;
        Ok(new)
    }

    fn spill_failure(&self, error: io::Error) -> DestinationError {
        let dir = self.spill.display();
        DestinationError::new(
            DestinationErrorKind::Write,
            format!(
                "cannot write the hashes of a table's keys to temporary files in {dir}: {error}; the directory must exist and be writable, with room for 16 bytes per row of the table"
            ),
        )
        .with_source(error)
    }

    /// Hashes held; a stored hash read twice counts twice until a merge meets both copies.
    fn len(&self) -> usize {
        self.recent.len() + self.levels.iter().flatten().map(Run::len).sum::<usize>()
    }

    /// Writes the recent run out once it is full, and grows the filter once the set outgrows it.
    fn settle(&mut self) -> io::Result<()> {
        if self.recent.len() > self.recent_limit {
            self.spill_recent()?;
        }
        if self.len() > self.filter.capacity() {
            self.grow_filter()?;
        }
        Ok(())
    }

    /// Merges the recent run, and the levels down to the first one with room for them all,
    /// into that level.
    fn spill_recent(&mut self) -> io::Result<()> {
        let mut held = self.recent.len();
        let mut level = 0;
        loop {
            held += self.levels.get(level).into_iter().flatten().map(Run::len).sum::<usize>();
            if held <= self.recent_limit * GROWTH.pow(level as u32 + 1) {
                break;
            }
            level += 1;
        }
        // The smaller levels first: a cascade rewrites them once more, a small share.
        let mut runs = self.levels.iter().take(level + 1).flatten();
        let first = runs.next().map_or(Source::Memory(&[]), |run| Source::Run(Reader::new(run)));
        let mut run = merge(&self.spill, Source::Memory(&self.recent), first)?;
        for below in runs {
            run = merge(&self.spill, Source::Run(Reader::new(&run)), Source::Run(Reader::new(below)))?;
        }
        self.levels.resize_with(self.levels.len().max(level + 1), || None);
        self.levels[..level].iter_mut().for_each(|above| *above = None);
        self.levels[level] = Some(run);
        self.recent = Vec::with_capacity(self.recent_limit);
        Ok(())
    }

    /// Rebuilds the filter from every hash, for half again as many as the set holds. The old
    /// filter is freed first, so that the two are never held at once; until the new one is
    /// built, or if reading a run fails, the saturated filter sends every lookup to the runs.
    fn grow_filter(&mut self) -> io::Result<()> {
        self.filter = Filter::saturated();
        let mut filter = Filter::with_capacity(self.len() + self.len() / 2);
        self.recent.iter().for_each(|&hash| filter.insert(hash));
        for run in self.levels.iter().flatten() {
            Source::Run(Reader::new(run)).drain(|hashes| {
                hashes.iter().for_each(|&hash| filter.insert(hash));
                Ok(())
            })?;
        }
        self.filter = filter;
        Ok(())
    }

    /// Bytes the set holds in memory.
    #[cfg(test)]
    fn heap_bytes(&self) -> usize {
        self.filter.heap_bytes()
            + self.recent.capacity() * size_of::<u64>()
            + self.levels.iter().flatten().map(Run::heap_bytes).sum::<usize>()
    }
}

/// Whether any of `levels` holds `hash`.
fn any_holds(levels: &mut [Lookup], hash: u64) -> io::Result<bool> {
    for level in levels {
        if level.holds(hash)? {
            return Ok(true);
        }
    }
    Ok(false)
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
        /// An empty set in `dir` whose recent run holds `limit` hashes.
        fn small(dir: &tempfile::TempDir, limit: usize) -> Self {
            KeyHashes::with_recent_limit(dir.path(), limit)
        }

        /// The set of `hashes`, stored.
        fn stored(dir: &tempfile::TempDir, limit: usize, hashes: &[u64]) -> Self {
            let mut set = KeyHashes::small(dir, limit);
            set.insert_stored(&mut hashes.to_vec()).unwrap();
            set
        }

        /// Whether the set holds `hash`, asked of every run.
        fn holds(&self, hash: u64) -> bool {
            self.recent.binary_search(&hash).is_ok()
                || self.levels.iter().flatten().any(|run| run::Lookup::new(run).holds(hash).unwrap())
        }

        /// Every hash held, in order.
        fn all(&self) -> Vec<u64> {
            let mut all = self.recent.clone();
            for run in self.levels.iter().flatten() {
                let hashes = run.hashes();
                assert!(hashes.windows(2).all(|w| w[0] < w[1]), "each run stays sorted without repeats");
                all.extend(hashes);
            }
            // A stored hash read again may lie in two runs until a merge meets both.
            all.sort_unstable();
            all.dedup();
            all
        }

        /// Each level within its size, the recent run within its limit and sorted.
        fn assert_in_shape(&self) {
            assert!(self.recent.len() <= self.recent_limit && self.recent.windows(2).all(|w| w[0] < w[1]));
            for (level, run) in self.levels.iter().enumerate() {
                let len = run.as_ref().map_or(0, Run::len);
                assert!(len <= self.recent_limit * GROWTH.pow(level as u32 + 1), "level {level}: {len}");
            }
        }
    }

    #[test]
    fn holds_exactly_what_was_inserted_across_levels() {
        let dir = tempfile::tempdir().unwrap();
        let mut set = KeyHashes::stored(&dir, 64, &spread(0, 1_000));
        for round in 1..20 {
            set.admit(&piece(&spread(round * 500, 1_000))).unwrap();
            set.assert_in_shape();
        }
        let inserted: std::collections::BTreeSet<u64> = (0..20).flat_map(|r| spread(r * 500, 1_000)).collect();
        assert_eq!(set.all(), inserted.iter().copied().collect::<Vec<_>>());
        assert_eq!(set.len(), inserted.len());
        let levels = set.levels.iter().flatten().count();
        assert!(levels >= 2, "two levels on disk, not {levels}");
        assert!(inserted.iter().all(|h| set.holds(*h)));
        assert!(spread(1_000_000, 1_000).iter().all(|h| !set.holds(*h)));
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "the levels' files have no names");
    }

    #[test]
    fn a_large_set_grows_by_levels_and_finds_keys_in_any() {
        let dir = tempfile::tempdir().unwrap();
        let mut set = KeyHashes::stored(&dir, 256, &spread(0, 20_000));
        let mut inserted: std::collections::BTreeSet<u64> = spread(0, 20_000).into_iter().collect();
        for round in 1..=40 {
            let hashes = spread(round * 1_000_000, 3_125);
            inserted.extend(&hashes);
            assert!(set.admit(&piece(&hashes)).unwrap().iter().all(|new| *new), "round {round}: new keys");
            set.assert_in_shape();
        }
        let last = spread(99_000_000, 100);
        inserted.extend(&last);
        assert!(set.admit(&piece(&last)).unwrap().iter().all(|new| *new));
        let levels = set.levels.iter().flatten().count();
        assert!(set.recent.len() == 100 && levels >= 2, "a recent run and {levels} levels");
        assert_eq!(set.all(), inserted.iter().copied().collect::<Vec<_>>());
        // A stored key of each level and of the recent run, a key new to all, a key the piece holds twice.
        let mut piece: Vec<Option<u64>> = Vec::new();
        for run in set.levels.iter().flatten() {
            piece.push(Some(run.hashes()[77]));
        }
        piece.push(Some(set.recent[7]));
        let fresh = spread(7_777_777, 1)[0];
        let twice = spread(8_888_888, 1)[0];
        piece.extend([Some(twice), Some(fresh), Some(twice)]);
        let stored = piece.len() - 3;
        let mut expected = vec![false; stored];
        expected.extend([false, true, false]);
        assert_eq!(set.admit(&piece).unwrap(), expected);
        assert!(set.holds(fresh) && set.holds(twice), "held from now on");
        assert_eq!(set.admit(&[Some(fresh)]).unwrap(), [false], "so not new a second time");
    }

    #[test]
    fn merges_at_both_ends_and_ignores_repeats() {
        let dir = tempfile::tempdir().unwrap();
        let mut set = KeyHashes::stored(&dir, 4, &[50, 10, 30, 30]);
        set.admit(&piece(&[60, 0, 30, 20, 60])).unwrap();
        assert_eq!(set.all(), vec![0, 10, 20, 30, 50, 60]);
        assert!(!set.levels.is_empty(), "past the recent run's limit of 4");
        set.insert_stored(&mut vec![20, 70, 0]).unwrap();
        set.admit(&[]).unwrap();
        assert_eq!(set.all(), vec![0, 10, 20, 30, 50, 60, 70]);
        let mut empty = KeyHashes::small(&dir, 4);
        assert_eq!(empty.len(), 0);
        empty.admit(&piece(&[3, 1, 2])).unwrap();
        assert_eq!(empty.all(), vec![1, 2, 3]);
    }

    #[test]
    fn only_unstored_keys_that_a_piece_holds_once_are_certainly_new() {
        let dir = tempfile::tempdir().unwrap();
        let mut held = KeyHashes::stored(&dir, RECENT, &[10, 20]);
        let piece = [Some(10), Some(30), Some(40), Some(30), None, Some(50)];
        let new = held.admit(&piece).unwrap();
        assert_eq!(new, [false, false, true, false, false, true]);
        assert_eq!(held.all(), [10, 20, 30, 40, 50], "the piece's keys are held, once each");
        let rows: Vec<Row> = (0..6).map(|i| Row { values: vec![Value::Int(i)], deleted: i == 5 }).collect();
        let direct: Vec<(&[Value], bool)> = rows_where(&rows, &new, true).collect();
        assert_eq!(direct, [(&[Value::Int(2)][..], false), (&[Value::Int(5)][..], true)]);
        assert_eq!(rows_where(&rows, &new, false).count(), 4, "the others are merged");
    }

    #[test]
    fn lookups_in_one_sweep_agree_with_searching_the_whole_set() {
        let run = {
            let mut run = spread(0, 50_000);
            run.sort_unstable();
            run
        };
        for seek_from in [0, 1, 7, 49_999, 50_000] {
            for hash in [0, 1, run[0], run[17], run[49_999], u64::MAX] {
                let from = seek_from.min(run.partition_point(|&s| s < hash));
                assert_eq!(seek(&run, from, hash), run.partition_point(|&s| s < hash));
            }
        }
        // A piece of stored and new keys, some repeated, some unhashable, in no order.
        let dir = tempfile::tempdir().unwrap();
        let mut held = KeyHashes::stored(&dir, 1_024, &spread(0, 50_000));
        let mut piece: Vec<Option<u64>> = spread(40_000, 20_000).into_iter().map(Some).collect();
        piece.extend(spread(90_000, 50).into_iter().map(Some));
        piece.extend([None, piece[3], piece[15_000], None]);
        piece.reverse();
        let mut times = std::collections::HashMap::new();
        for hash in piece.iter().flatten() {
            *times.entry(*hash).or_insert(0) += 1;
        }
        let expected: Vec<bool> = piece.iter().map(|h| h.is_some_and(|h| times[&h] == 1 && !held.holds(h))).collect();
        let new = held.admit(&piece).unwrap();
        for (i, (new, expected)) in new.iter().zip(&expected).enumerate() {
            assert_eq!(new, expected, "row {i}");
        }
        // 10,000 of the 20,000 are stored; of the two repeated keys, one is new.
        assert_eq!(new.iter().filter(|n| **n).count(), 10_000 + 50 - 1);
    }

    #[test]
    fn a_million_keys_hold_about_two_bytes_each_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let mut set = KeyHashes::new(dir.path());
        let hashes: Vec<u64> =
            (0..1_000_000u64).map(|i| foldhash::quality::FixedState::with_seed(3).hash_one(i)).collect();
        let mut most = 0;
        for piece in hashes.chunks(3_125) {
            let new = set.admit(&piece.iter().copied().map(Some).collect::<Vec<_>>()).unwrap();
            assert!(new.iter().all(|n| *n), "distinct keys are new");
            most = most.max(set.heap_bytes());
        }
        assert!(most < 5 * hashes.len() / 2, "{most} bytes in memory for {} keys", hashes.len());
        let again: Vec<Option<u64>> = hashes.iter().step_by(331).copied().map(Some).collect();
        assert!(set.admit(&again).unwrap().iter().all(|n| !n), "every stored key is found");
    }

    #[test]
    fn a_failed_write_keeps_every_hash_and_the_next_one_catches_up() {
        let dir = tempfile::tempdir().unwrap();
        let spill = dir.path().join("spill");
        let mut set = KeyHashes::with_recent_limit(&spill, 64);
        let first = spread(0, 100);
        let failed = set.admit(&piece(&first)).unwrap_err();
        assert_eq!(failed.kind(), DestinationErrorKind::Write);
        assert!(failed.to_string().contains(&format!("temporary files in {}", spill.display())), "{failed}");
        let cause = std::error::Error::source(&failed).and_then(|e| e.downcast_ref::<io::Error>()).map(io::Error::kind);
        assert_eq!(cause, Some(io::ErrorKind::NotFound));
        assert!(first.iter().all(|h| set.holds(*h)), "the piece's keys are held, as if written");
        std::fs::create_dir(&spill).unwrap();
        assert!(set.admit(&piece(&first[..10])).unwrap().iter().all(|n| !n));
        set.admit(&piece(&spread(100, 100))).unwrap();
        set.assert_in_shape();
        assert_eq!(set.all().len(), 200);
    }

    #[test]
    fn without_its_filter_the_set_answers_the_same_from_its_runs() {
        let dir = tempfile::tempdir().unwrap();
        let stored = spread(0, 5_000);
        let piece_of = |set: &mut KeyHashes| {
            let mut piece = piece(&spread(4_000, 2_000));
            piece.push(None);
            set.admit(&piece).unwrap()
        };
        let expected = piece_of(&mut KeyHashes::stored(&dir, 256, &stored));
        let mut unfiltered = KeyHashes::stored(&dir, 256, &stored);
        unfiltered.filter = Filter::saturated();
        assert_eq!(piece_of(&mut unfiltered), expected, "as a rebuild that failed leaves it");
        assert_eq!(expected.iter().filter(|n| **n).count(), 1_000);
        assert!(unfiltered.filter.capacity() > unfiltered.len(), "and the next settle rebuilds it");
        assert_eq!(
            unfiltered.all(),
            spread(0, 6_000).into_iter().collect::<std::collections::BTreeSet<_>>().into_iter().collect::<Vec<_>>()
        );
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
