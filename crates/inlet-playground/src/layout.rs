//! Where the initial users sit in time and in the id space: a handful of arithmetic rules,
//! so that 10,000,000 users cost a few kilobytes and any one of them is found in O(log n).
//!
//! User `i` owns the time slot `[origin + i·spacing, origin + (i+1)·spacing)`; its `createdAt`
//! falls in the first quarter of the slot and its `updatedAt` later in the same slot (at most
//! an hour later, like the reference). Both are therefore strictly increasing in `i`: the
//! order by `createdAt`, the order by `updatedAt` and the order of creation are one and the
//! same, and a timestamp filter is a binary search. Hostile modes bend these rules in
//! controlled ways: tie groups share one `updatedAt`, id gaps make holes in the step ids.

use crate::rng::{Domain, Draws};
use crate::timefmt::UnixSeconds;

/// The reference spreads its 200 users over the last 200 hours.
const REFERENCE_SPAN_SECONDS: i64 = 200 * 3600;

/// Tie groups: runs of consecutive users that share one `updatedAt`.
#[derive(Clone, Debug, PartialEq)]
pub struct TiesConfig {
    /// Fraction of users that belong to a tie group, in `(0, 1]`.
    pub fraction: f64,
    /// Largest group; groups are drawn small (2 to 10), up to a page, and beyond a page.
    pub max_group: u32,
}

/// Holes in the id sequence of `/incremental/step`.
#[derive(Clone, Debug, PartialEq)]
pub struct GapsConfig {
    /// Probability that a hole precedes a given user, in `(0, 1]`.
    pub rate: f64,
    /// Longest hole, in ids; half the holes are short (1 to 10 ids), half long (a fifth of
    /// this to all of it), so that a hole many steps wide is always among them.
    pub max_len: u64,
}

#[derive(Clone, Copy, Debug)]
struct TieGroup {
    start: u32,
    len: u32,
}

#[derive(Clone, Copy, Debug)]
struct Gap {
    /// The hole sits just before this user.
    before: u32,
    /// Ids skipped by this hole and every hole before it.
    skipped: u64,
}

/// The initial dataset's shape in time and ids.
#[derive(Debug)]
pub(crate) struct Layout {
    pub seed: u64,
    pub users: u32,
    /// Every initial `updatedAt` is strictly before this instant (the `--now` flag).
    pub now: UnixSeconds,
    origin: UnixSeconds,
    spacing: i64,
    ties: Vec<TieGroup>,
    gaps: Vec<Gap>,
}

impl Layout {
    pub(crate) fn new(
        seed: u64,
        users: u32,
        now: UnixSeconds,
        page_size: u32,
        ties: Option<&TiesConfig>,
        gaps: Option<&GapsConfig>,
    ) -> Self {
        let spacing = (REFERENCE_SPAN_SECONDS / i64::from(users.max(1))).max(2);
        Layout {
            seed,
            users,
            now,
            origin: now - spacing * i64::from(users),
            spacing,
            ties: ties.map(|t| tie_groups(seed, users, page_size, t)).unwrap_or_default(),
            gaps: gaps.map(|g| id_gaps(seed, users, g)).unwrap_or_default(),
        }
    }

    pub(crate) fn created_at(&self, i: u32) -> UnixSeconds {
        self.slot(i).0
    }

    /// `updatedAt` of initial user `i`, shared with its tie group if it has one.
    pub(crate) fn updated_at(&self, i: u32) -> UnixSeconds {
        let last = match self.tie_group_of(i) {
            Some(g) => g.start + g.len - 1,
            None => i,
        };
        self.slot(last).1
    }

    /// `(createdAt, own updatedAt)` before tie groups are applied.
    fn slot(&self, i: u32) -> (UnixSeconds, UnixSeconds) {
        let start = self.origin + i64::from(i) * self.spacing;
        let mut d = Draws::new(self.seed, Domain::Timing, u64::from(i));
        let created = start + d.below((self.spacing / 4 + 1) as u64) as i64;
        let room = (start + self.spacing - 1 - created).min(3600);
        (created, created + d.below(room as u64 + 1) as i64)
    }

    fn tie_group_of(&self, i: u32) -> Option<TieGroup> {
        let k = self.ties.partition_point(|g| g.start <= i);
        let g = *self.ties.get(k.checked_sub(1)?)?;
        (i < g.start + g.len).then_some(g)
    }

    /// First initial user whose `updatedAt` is at least `t` (or `users` if none is).
    pub(crate) fn first_updated_at_or_after(&self, t: UnixSeconds) -> u32 {
        partition_point_u32(self.users, |i| self.updated_at(i) < t)
    }

    /// The step id of user `i`: its 1-based position, shifted by the holes before it.
    /// Users added later continue the sequence after the last initial one.
    pub(crate) fn step_id(&self, i: u32) -> u64 {
        if i < self.users {
            let k = self.gaps.partition_point(|g| g.before <= i);
            let skipped = k.checked_sub(1).map_or(0, |k| self.gaps[k].skipped);
            u64::from(i) + 1 + skipped
        } else {
            self.last_initial_step_id() + u64::from(i - self.users) + 1
        }
    }

    fn last_initial_step_id(&self) -> u64 {
        self.users.checked_sub(1).map_or(0, |i| self.step_id(i))
    }

    /// The users (initial or added, by index) whose step ids fall in `ids`, as an index range.
    pub(crate) fn indices_for_step_ids(&self, first: u64, last: u64, total_indices: u32) -> std::ops::Range<u32> {
        let lo = partition_point_u32(total_indices, |i| self.step_id(i) < first);
        let hi = partition_point_u32(total_indices, |i| self.step_id(i) <= last);
        lo..hi.max(lo)
    }
}

/// First `i` in `0..n` for which `before(i)` is false, `before` being monotone.
fn partition_point_u32(n: u32, before: impl Fn(u32) -> bool) -> u32 {
    let (mut lo, mut hi) = (0u32, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if before(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

fn tie_groups(seed: u64, users: u32, page_size: u32, config: &TiesConfig) -> Vec<TieGroup> {
    let max_group = config.max_group.max(2);
    let page = page_size.clamp(11, max_group.max(11));
    let draw_len = |d: &mut Draws| -> u32 {
        let (lo, hi) = match d.below(10) {
            0..=3 => (2, 10),
            4..=6 => (11, page),
            _ => (page + 1, max_group.max(page + 1)),
        };
        d.between(u64::from(lo), u64::from(hi)).min(u64::from(max_group)) as u32
    };
    let mean_len = {
        let mut d = Draws::new(seed, Domain::Ties, u64::MAX);
        (0..256).map(|_| f64::from(draw_len(&mut d))).sum::<f64>() / 256.0
    };
    let mean_gap = mean_len * (1.0 - config.fraction) / config.fraction;
    let mut groups = Vec::new();
    let mut d = Draws::new(seed, Domain::Ties, 0);
    let mut pos = 0u64;
    loop {
        let start = pos + d.below((2.0 * mean_gap) as u64 + 1);
        let len = u64::from(draw_len(&mut d)).min(u64::from(users).saturating_sub(start));
        if len < 2 {
            return groups;
        }
        groups.push(TieGroup { start: start as u32, len: len as u32 });
        pos = start + len;
    }
}

fn id_gaps(seed: u64, users: u32, config: &GapsConfig) -> Vec<Gap> {
    let mut gaps = Vec::new();
    let mut d = Draws::new(seed, Domain::Gaps, 0);
    let spread = (2.0 / config.rate) as u64;
    let mut before = d.below(spread + 1);
    let mut skipped = 0;
    while before < u64::from(users) {
        skipped += if d.below(2) == 0 {
            d.between(1, 10)
        } else {
            d.between((config.max_len / 5).max(1), config.max_len.max(1))
        };
        gaps.push(Gap { before: before as u32, skipped });
        before += 1 + d.below(spread);
    }
    gaps
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: UnixSeconds = 1_795_000_000;

    #[test]
    fn timestamps_increase_strictly_and_stay_before_now() {
        for users in [1, 200, 10_000, 1_000_000] {
            let layout = Layout::new(7, users, NOW, 50, None, None);
            let step = (users / 5000).max(1);
            let mut previous_updated = i64::MIN;
            for i in (0..users).step_by(step as usize) {
                let (created, updated) = (layout.created_at(i), layout.updated_at(i));
                assert!(created <= updated && updated - created <= 3600);
                assert!(updated > previous_updated);
                assert!(updated < NOW);
                previous_updated = updated;
            }
        }
    }

    #[test]
    fn two_hundred_users_span_two_hundred_hours_like_the_reference() {
        let layout = Layout::new(1, 200, NOW, 50, None, None);
        let span = layout.updated_at(199) - layout.created_at(0);
        assert!((199 * 3600..=200 * 3600).contains(&span), "{span}");
    }

    #[test]
    fn tie_groups_share_one_timestamp_and_include_groups_larger_than_a_page() {
        let ties = TiesConfig { fraction: 0.3, max_group: 150 };
        let layout = Layout::new(3, 20_000, NOW, 50, Some(&ties), None);
        let mut sizes = Vec::new();
        let mut run = 1;
        for i in 1..20_000 {
            assert!(layout.updated_at(i) >= layout.updated_at(i - 1), "order is kept");
            if layout.updated_at(i) == layout.updated_at(i - 1) {
                run += 1;
            } else {
                if run > 1 {
                    sizes.push(run);
                }
                run = 1;
            }
        }
        let tied: u32 = sizes.iter().sum();
        assert!((0.2..0.4).contains(&(f64::from(tied) / 20_000.0)), "tied fraction {tied}");
        assert!(sizes.iter().any(|s| *s > 50), "some group is larger than a page");
        assert!(sizes.iter().any(|s| *s <= 10), "some group is small");
    }

    #[test]
    fn gaps_skip_ids_and_the_inverse_finds_users() {
        let gaps = GapsConfig { rate: 0.05, max_len: 5000 };
        let layout = Layout::new(5, 1000, NOW, 50, None, Some(&gaps));
        let ids: Vec<u64> = (0..1000).map(|i| layout.step_id(i)).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        let widest = ids.windows(2).map(|w| w[1] - w[0]).max().unwrap();
        assert!(widest > 2000, "some hole spans several steps of 1000: {widest}");
        for (i, id) in ids.iter().enumerate().step_by(37) {
            assert_eq!(layout.indices_for_step_ids(*id, *id, 1000), i as u32..i as u32 + 1);
        }
        assert_eq!(layout.indices_for_step_ids(ids[999] + 1, u64::MAX, 1000), 1000..1000);
    }

    #[test]
    fn without_gaps_step_ids_are_positions() {
        let layout = Layout::new(5, 200, NOW, 50, None, None);
        assert_eq!(layout.step_id(0), 1);
        assert_eq!(layout.step_id(199), 200);
        assert_eq!(layout.step_id(200), 201, "added users continue the sequence");
        assert_eq!(layout.indices_for_step_ids(199, 205, 200), 198..200);
    }
}
