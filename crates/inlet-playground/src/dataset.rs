//! The dataset as it stands at one instant: the immutable [`Layout`] of the initial users plus
//! an [`Overlay`] of every change made since (updates, inserts, deletes).
//!
//! Orders are never materialised. Ordered by `updatedAt`, the dataset is the run of initial
//! users that never changed (in index order, see [`crate::layout`]) followed by the changed
//! rows in the order they changed: a change always moves `updatedAt` to the present, which is
//! after every earlier value. Ordered by `createdAt` it is the same run merged, by index,
//! with the changed and added rows. Both are a long run minus a short sorted list of holes
//! plus a short list of extra rows, so counting and seeking cost O(log n + changes).

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use crate::layout::Layout;
use crate::timefmt::UnixSeconds;

/// What a delete does to a row.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeleteMode {
    /// The row disappears from every endpoint, as a hard delete in a database (default).
    #[default]
    Vanish,
    /// The row stays, with `updatedAt` and a new `deletedAt` field set to the deletion time,
    /// so that incremental readers can see the delete.
    Tombstone,
}

/// One row's current state, enough to render it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Row {
    pub index: u32,
    pub revision: u32,
    pub created_at: UnixSeconds,
    pub updated_at: UnixSeconds,
    pub deleted_at: Option<UnixSeconds>,
}

#[derive(Clone, Copy, Debug)]
struct Changed {
    row: Row,
    /// Position of the row's entry in [`Overlay::tail`]; `None` once it vanished.
    tail: Option<u32>,
}

#[derive(Clone, Copy, Debug)]
struct TailEntry {
    index: u32,
    updated_at: UnixSeconds,
    live: bool,
}

/// A change to apply, already resolved to a row and an instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    Update {
        index: u32,
        at: UnixSeconds,
    },
    /// `index` is the new row's, assigned by the primary (a replica may apply late).
    Insert {
        index: u32,
        at: UnixSeconds,
    },
    Delete {
        index: u32,
        at: UnixSeconds,
    },
}

/// Everything that changed since the start. Cloned on write while readers hold a snapshot.
#[derive(Clone, Debug, Default)]
pub(crate) struct Overlay {
    changed: BTreeMap<u32, Changed>,
    /// Initial users no longer in the unchanged run (updated, tombstoned or vanished), sorted.
    moved: Vec<u32>,
    /// Rows that vanished (any index), sorted.
    vanished: Vec<u32>,
    /// Rows whose `updatedAt` was set by a change, in change order, which is `updatedAt` order.
    tail: Vec<TailEntry>,
    added: u32,
}

/// A consistent view of the dataset that a request reads from start to end.
#[derive(Clone, Debug)]
pub(crate) struct Dataset {
    pub layout: Arc<Layout>,
    pub overlay: Overlay,
    pub delete_mode: DeleteMode,
}

impl Dataset {
    pub(crate) fn new(layout: Arc<Layout>, delete_mode: DeleteMode) -> Self {
        Dataset { layout, overlay: Overlay::default(), delete_mode }
    }

    /// Number of row indices ever used: initial users plus those added since.
    pub(crate) fn index_count(&self) -> u32 {
        self.layout.users + self.overlay.added
    }

    /// The row at `index` as it stands, vanished or not.
    pub(crate) fn row(&self, index: u32) -> Row {
        match self.overlay.changed.get(&index) {
            Some(c) => c.row,
            None => Row {
                index,
                revision: 0,
                created_at: self.layout.created_at(index),
                updated_at: self.layout.updated_at(index),
                deleted_at: None,
            },
        }
    }

    pub(crate) fn is_vanished(&self, index: u32) -> bool {
        self.overlay.vanished.binary_search(&index).is_ok()
    }

    /// Whether a row can still be updated or deleted.
    pub(crate) fn is_live(&self, index: u32) -> bool {
        index < self.index_count()
            && self.overlay.changed.get(&index).is_none_or(|c| c.tail.is_some() && c.row.deleted_at.is_none())
    }

    /// Initial users `base_end..` are hidden (not yet replicated); `users` hides none.
    fn base_run(&self, from: u32, base_end: u32) -> BaseRun<'_> {
        let hi = base_end.min(self.layout.users);
        BaseRun::new(from.min(hi), hi, &self.overlay.moved)
    }

    /// Rows with `updatedAt >= since`, ordered by `updatedAt`.
    pub(crate) fn by_updated_at(&self, since: Option<UnixSeconds>, base_end: u32) -> Ordered<'_> {
        let from = since.map_or(0, |t| self.layout.first_updated_at_or_after(t));
        let tail = &self.overlay.tail;
        let start = since.map_or(0, |t| tail.partition_point(|e| e.updated_at < t));
        let extra = tail[start..].iter().filter(|e| e.live).map(|e| e.index).collect();
        Ordered { base: self.base_run(from, base_end), extra, merge_by_index: false }
    }

    /// Rows with `updatedAt >= since`, ordered by `createdAt`.
    pub(crate) fn by_created_at(&self, since: Option<UnixSeconds>, base_end: u32) -> Ordered<'_> {
        let from = since.map_or(0, |t| self.layout.first_updated_at_or_after(t));
        let extra = self
            .overlay
            .changed
            .values()
            .filter(|c| c.tail.is_some() && since.is_none_or(|t| c.row.updated_at >= t))
            .map(|c| c.row.index)
            .collect();
        Ordered { base: self.base_run(from, base_end), extra, merge_by_index: true }
    }

    /// Rows whose step id is in `first..=last`, in id order.
    pub(crate) fn by_step_id(&self, first: u64, last: u64, base_end: u32) -> Ordered<'_> {
        let indices = self.layout.indices_for_step_ids(first, last, self.index_count());
        // Hidden initial users only exist before any change became visible, so before any add.
        let hi = if base_end < self.layout.users { indices.end.min(base_end) } else { indices.end };
        Ordered {
            base: BaseRun::new(indices.start.min(hi), hi, &self.overlay.vanished),
            extra: Vec::new(),
            merge_by_index: false,
        }
    }

    pub(crate) fn apply(&mut self, change: Change) {
        match change {
            Change::Insert { index, at } => {
                debug_assert_eq!(index, self.index_count(), "inserts arrive in order");
                self.overlay.added += 1;
                let row = Row { index, revision: 0, created_at: at, updated_at: at, deleted_at: None };
                self.push_tail(row);
            }
            Change::Update { index, at } => {
                let mut row = self.row(index);
                row.revision += 1;
                row.updated_at = at;
                self.move_to_tail(row);
            }
            Change::Delete { index, at } => match self.delete_mode {
                DeleteMode::Tombstone => {
                    let mut row = self.row(index);
                    row.updated_at = at;
                    row.deleted_at = Some(at);
                    self.move_to_tail(row);
                }
                DeleteMode::Vanish => {
                    let row = self.row(index);
                    self.leave_base_run(index);
                    self.kill_tail_entry(index);
                    insert_sorted(&mut self.overlay.vanished, index);
                    self.overlay.changed.insert(index, Changed { row, tail: None });
                }
            },
        }
    }

    fn move_to_tail(&mut self, row: Row) {
        self.leave_base_run(row.index);
        self.kill_tail_entry(row.index);
        self.push_tail(row);
    }

    /// Places the row in the tail by `updatedAt`: at the end, except on a lagging replica,
    /// where a change can become visible after later ones.
    fn push_tail(&mut self, row: Row) {
        let tail = &mut self.overlay.tail;
        let position = tail.partition_point(|e| e.updated_at <= row.updated_at);
        tail.insert(position, TailEntry { index: row.index, updated_at: row.updated_at, live: true });
        if position + 1 < tail.len() {
            for changed in self.overlay.changed.values_mut() {
                if let Some(p) = changed.tail.as_mut()
                    && *p as usize >= position
                {
                    *p += 1;
                }
            }
        }
        self.overlay.changed.insert(row.index, Changed { row, tail: Some(position as u32) });
    }

    fn leave_base_run(&mut self, index: u32) {
        if index < self.layout.users && !self.overlay.changed.contains_key(&index) {
            insert_sorted(&mut self.overlay.moved, index);
        }
    }

    fn kill_tail_entry(&mut self, index: u32) {
        if let Some(position) = self.overlay.changed.get(&index).and_then(|c| c.tail) {
            self.overlay.tail[position as usize].live = false;
        }
    }
}

fn insert_sorted(list: &mut Vec<u32>, value: u32) {
    if let Err(at) = list.binary_search(&value) {
        list.insert(at, value);
    }
}

/// Indices `lo..hi` minus the sorted `holes` that fall inside.
#[derive(Clone, Debug)]
struct BaseRun<'a> {
    lo: u32,
    hi: u32,
    holes: &'a [u32],
}

impl<'a> BaseRun<'a> {
    fn new(lo: u32, hi: u32, holes: &'a [u32]) -> Self {
        let start = holes.partition_point(|h| *h < lo);
        let end = holes.partition_point(|h| *h < hi);
        BaseRun { lo, hi, holes: &holes[start..end] }
    }

    fn len(&self) -> usize {
        (self.hi - self.lo) as usize - self.holes.len()
    }

    /// The `k`-th index of the run (`k < len`), and how many holes precede it.
    fn select(&self, k: usize) -> (u32, usize) {
        // Hole `j` has `holes[j] - lo - j` members before it: count the holes with at most `k`.
        let k = k as u32;
        let (mut lo, mut hi) = (0usize, self.holes.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.holes[mid] - self.lo - mid as u32 <= k {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        (self.lo + k + lo as u32, lo)
    }

    /// Members of ranks `ranks`, in order.
    fn collect(&self, ranks: Range<usize>, out: &mut Vec<u32>) {
        if ranks.is_empty() {
            return;
        }
        let (mut index, mut hole) = self.select(ranks.start);
        for _ in ranks {
            while self.holes.get(hole) == Some(&index) {
                index += 1;
                hole += 1;
            }
            out.push(index);
            index += 1;
        }
    }
}

/// An ordered selection of rows: a run of unchanged rows plus extra (changed or added) rows,
/// either after the run (`updatedAt` order) or merged into it by index (`createdAt` order).
#[derive(Clone, Debug)]
pub(crate) struct Ordered<'a> {
    base: BaseRun<'a>,
    extra: Vec<u32>,
    merge_by_index: bool,
}

impl Ordered<'_> {
    pub(crate) fn len(&self) -> usize {
        self.base.len() + self.extra.len()
    }

    /// Row indices at ranks `ranks` (clamped to the selection), in order.
    pub(crate) fn slice(&self, ranks: Range<usize>) -> Vec<u32> {
        let end = ranks.end.min(self.len());
        let start = ranks.start.min(end);
        let mut out = Vec::with_capacity(end - start);
        if !self.merge_by_index {
            let base_len = self.base.len();
            self.base.collect(start.min(base_len)..end.min(base_len), &mut out);
            out.extend_from_slice(&self.extra[start.max(base_len) - base_len..end.max(base_len) - base_len]);
            return out;
        }
        // Split `start` between the run and the extras: the number `e` of extras ranked before
        // `start` is the largest for which the extra at rank `e - 1` precedes the run member
        // that would otherwise take its place.
        let base_len = self.base.len();
        let (mut lo, mut hi) = (start.saturating_sub(base_len), start.min(self.extra.len()));
        while lo < hi {
            let e = lo + (hi - lo).div_ceil(2);
            let b = start - e;
            if b >= base_len || self.extra[e - 1] < self.base.select(b).0 {
                lo = e;
            } else {
                hi = e - 1;
            }
        }
        let (mut e, b) = (lo, start - lo);
        let mut run = Vec::new();
        self.base.collect(b..(b + (end - start)).min(base_len), &mut run);
        let mut run = run.into_iter().peekable();
        while out.len() < end - start {
            let take_extra = match (self.extra.get(e), run.peek()) {
                (Some(x), Some(r)) => x < r,
                (Some(_), None) => true,
                (None, _) => false,
            };
            if take_extra {
                out.push(self.extra[e]);
                e += 1;
            } else {
                out.push(run.next().expect("ranks are within the selection"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Layout;

    const NOW: UnixSeconds = 1_795_000_000;

    fn dataset(users: u32, mode: DeleteMode) -> Dataset {
        Dataset::new(Arc::new(Layout::new(1, users, NOW, 50, None, None)), mode)
    }

    impl Dataset {
        /// Every row ever seen, in index order, with whether it vanished.
        pub(crate) fn all_rows(&self) -> impl Iterator<Item = (Row, bool)> + '_ {
            (0..self.index_count()).map(|i| (self.row(i), self.is_vanished(i)))
        }
    }

    /// The obvious, slow model of both orders, to check the fast ones against.
    fn model(d: &Dataset, since: Option<UnixSeconds>, by_created: bool) -> Vec<u32> {
        let mut rows: Vec<Row> =
            d.all_rows().filter(|(r, v)| !v && since.is_none_or(|t| r.updated_at >= t)).map(|(r, _)| r).collect();
        if !by_created {
            let tail_pos = |i: u32| d.overlay.changed.get(&i).and_then(|c| c.tail).unwrap_or(0);
            rows.sort_by_key(|r| (r.updated_at, d.overlay.changed.contains_key(&r.index), tail_pos(r.index), r.index));
        }
        rows.iter().map(|r| r.index).collect()
    }

    fn check_all_slices(d: &Dataset, since: Option<UnixSeconds>) {
        for by_created in [false, true] {
            let expected = model(d, since, by_created);
            let ordered = if by_created {
                d.by_created_at(since, d.layout.users)
            } else {
                d.by_updated_at(since, d.layout.users)
            };
            assert_eq!(ordered.len(), expected.len());
            for start in 0..=expected.len() {
                for len in [0, 1, 3, 7, 50] {
                    let end = (start + len).min(expected.len());
                    assert_eq!(
                        ordered.slice(start..start + len),
                        expected[start..end],
                        "by_created={by_created} since={since:?} {start}+{len}"
                    );
                }
            }
        }
    }

    #[test]
    fn orders_match_the_model_through_updates_inserts_and_deletes() {
        let mut d = dataset(60, DeleteMode::Vanish);
        check_all_slices(&d, None);
        let t = NOW + 10;
        for (k, change) in [
            Change::Update { index: 3, at: t },
            Change::Update { index: 40, at: t },
            Change::Insert { index: 60, at: t + 1 },
            Change::Delete { index: 10, at: t + 1 },
            Change::Update { index: 3, at: t + 2 },
            Change::Delete { index: 60, at: t + 2 },
            Change::Insert { index: 61, at: t + 3 },
            Change::Update { index: 0, at: t + 3 },
            Change::Update { index: 59, at: t + 4 },
        ]
        .into_iter()
        .enumerate()
        {
            d.apply(change);
            for since in [None, Some(d.layout.updated_at(20)), Some(t + 1), Some(t + 3), Some(t + 9)] {
                check_all_slices(&d, since);
            }
            assert!(k < 9);
        }
        assert!(!d.is_live(10) && !d.is_live(60) && d.is_live(3) && d.is_live(61));
    }

    #[test]
    fn orders_match_the_model_through_random_changes() {
        use crate::rng::{Domain, Draws};
        for mode in [DeleteMode::Vanish, DeleteMode::Tombstone] {
            let mut d = dataset(40, mode);
            let mut draws = Draws::new(3, Domain::Changes, 0);
            for step in 0..120 {
                let at = NOW + step / 3;
                let index = draws.below(u64::from(d.index_count())) as u32;
                let change = match draws.below(10) {
                    0..=5 if d.is_live(index) => Change::Update { index, at },
                    6..=7 => Change::Insert { index: d.index_count(), at },
                    _ if d.is_live(index) => Change::Delete { index, at },
                    _ => continue,
                };
                d.apply(change);
                for since in [None, Some(NOW - 3600 * 5), Some(at)] {
                    check_all_slices(&d, since);
                }
            }
        }
    }

    #[test]
    fn tombstones_stay_visible_with_their_deletion_time() {
        let mut d = dataset(10, DeleteMode::Tombstone);
        d.apply(Change::Delete { index: 4, at: NOW + 5 });
        let rows = d.by_updated_at(Some(NOW), 10).slice(0..10);
        assert_eq!(rows, vec![4]);
        assert_eq!(d.row(4).deleted_at, Some(NOW + 5));
        assert!(!d.is_live(4));
        check_all_slices(&d, None);
    }

    #[test]
    fn step_windows_skip_vanished_rows_and_hidden_ones() {
        let mut d = dataset(10, DeleteMode::Vanish);
        d.apply(Change::Delete { index: 2, at: NOW });
        assert_eq!(d.by_step_id(1, 5, 10).slice(0..100), vec![0, 1, 3, 4]);
        assert_eq!(d.by_step_id(1, 100, 6).slice(0..100), vec![0, 1, 3, 4, 5]);
    }
}
