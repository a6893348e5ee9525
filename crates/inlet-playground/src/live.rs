//! The dataset over time: the playground's clock, the changes it makes while serving, and the
//! replica that readers see, lagging the primary by the configured delay.
//!
//! With a replica lag `L`, each change becomes visible on the replica after its own seeded
//! delay between 0 and `L` seconds, so rows appear out of `updatedAt` order, as on a real
//! lagging replica; changes to one row, and inserts, still appear in order.
//!
//! Changes are applied lazily, when a request or a test looks: change `k` (from 1) of the
//! schedule is due at `now + k / rate` and is drawn from `(seed, k)`, so the dataset at clock time `t`
//! depends only on the seed and `t`, not on when requests happened to arrive.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::config::ChangesConfig;
use crate::dataset::{Change, Dataset};
use crate::rng::{Domain, Draws};
use crate::timefmt::UnixSeconds;

/// The playground's clock: starts at the configured `now` and runs at the wall clock's pace,
/// or stands still (`started: None`) until pushed forward, for tests that need every instant
/// under control.
#[derive(Debug)]
pub(crate) struct Clock {
    origin: UnixSeconds,
    started: Option<Instant>,
    pushed: Mutex<Duration>,
}

impl Clock {
    /// A clock at `origin` plus `past_origin` now (the fraction of a second the wall clock is
    /// already past a whole-second origin), running at the wall clock's pace.
    pub(crate) fn running(origin: UnixSeconds, past_origin: Duration) -> Self {
        let started = Instant::now().checked_sub(past_origin).unwrap_or_else(Instant::now);
        Clock { origin, started: Some(started), pushed: Mutex::new(Duration::ZERO) }
    }

    pub(crate) fn manual(origin: UnixSeconds) -> Self {
        Clock { origin, started: None, pushed: Mutex::new(Duration::ZERO) }
    }

    /// Seconds since the configured `now`, fractional.
    fn elapsed(&self) -> f64 {
        (self.started.map_or(Duration::ZERO, |s| s.elapsed()) + *lock(&self.pushed)).as_secs_f64()
    }

    pub(crate) fn now(&self) -> UnixSeconds {
        self.origin + self.elapsed() as i64
    }

    pub(crate) fn advance(&self, by: Duration) {
        *lock(&self.pushed) += by;
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these locks cannot leave their data half-updated.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How many changes of each kind to make at once (see [`Live::change_now`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChangeBatch {
    /// Users to update: `updatedAt` moves to now, address, company and job change.
    pub updates: u32,
    /// Users to add, created now.
    pub inserts: u32,
    /// Users to delete (see [`crate::DeleteMode`]).
    pub deletes: u32,
}

/// The row indices a batch touched, in the order of the batch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Touched {
    pub updated: Vec<u32>,
    pub inserted: Vec<u32>,
    pub deleted: Vec<u32>,
}

#[derive(Debug)]
struct State {
    primary: Arc<Dataset>,
    /// The replica's view when it lags; `None` when it is the primary.
    replica: Option<Arc<Dataset>>,
    /// Applied to the primary, not yet to the replica: (visible from, order made, change).
    in_flight: Vec<(UnixSeconds, u64, Change)>,
    /// When each row's latest change becomes visible, so that a row's changes keep their order.
    visible_from: HashMap<u32, UnixSeconds>,
    /// When the latest insert becomes visible, so that inserts keep their order.
    last_insert_visible: UnixSeconds,
    made: u64,
    scheduled: u64,
    manual: u64,
}

/// The dataset over time. Readers take cheap snapshots; changes copy on write.
#[derive(Debug)]
pub(crate) struct Live {
    pub clock: Clock,
    schedule: Option<ChangesConfig>,
    lag: i64,
    state: Mutex<State>,
}

/// What a request reads: a consistent dataset, and the first hidden initial user.
pub(crate) struct View {
    pub dataset: Arc<Dataset>,
    pub base_end: u32,
}

impl Live {
    pub(crate) fn new(dataset: Dataset, clock: Clock, schedule: Option<ChangesConfig>, lag_seconds: u32) -> Self {
        let primary = Arc::new(dataset);
        let replica = (lag_seconds > 0).then(|| primary.clone());
        Live {
            clock,
            schedule,
            lag: i64::from(lag_seconds),
            state: Mutex::new(State {
                primary,
                replica,
                in_flight: Vec::new(),
                visible_from: HashMap::new(),
                last_insert_visible: UnixSeconds::MIN,
                made: 0,
                scheduled: 0,
                manual: 0,
            }),
        }
    }

    /// What readers of the API see now.
    pub(crate) fn view(&self) -> View {
        let now = self.clock.now();
        let state = self.catch_up();
        let dataset = state.replica.as_ref().unwrap_or(&state.primary).clone();
        drop(state);
        let base_end = if self.lag == 0 {
            dataset.layout.users
        } else {
            dataset.layout.first_updated_at_or_after(now - self.lag + 1)
        };
        View { dataset, base_end }
    }

    /// The primary's complete current state (the ground truth), lag or not.
    pub(crate) fn truth(&self) -> Arc<Dataset> {
        self.catch_up().primary.clone()
    }

    /// Makes a batch of changes at the current instant, choosing rows with the seeded stream
    /// of manual changes.
    pub(crate) fn change_now(&self, batch: ChangeBatch) -> Touched {
        let now = self.clock.now();
        let mut state = self.catch_up();
        let mut touched = Touched::default();
        let kinds = [(Kind::Update, batch.updates), (Kind::Insert, batch.inserts), (Kind::Delete, batch.deletes)];
        for (kind, count) in kinds {
            for _ in 0..count {
                let key = state.manual;
                state.manual += 1;
                let mut draws = Draws::new(state.primary.layout.seed, Domain::ManualChanges, key);
                let Some(change) = resolve(&state.primary, kind, now, &mut draws) else { continue };
                let index = change.index();
                match kind {
                    Kind::Update => touched.updated.push(index),
                    Kind::Insert => touched.inserted.push(index),
                    Kind::Delete => touched.deleted.push(index),
                }
                self.record(&mut state, change);
            }
        }
        self.release(&mut state, now);
        touched
    }

    /// Applies every scheduled change that is due, and releases to the replica every change
    /// older than the lag.
    fn catch_up(&self) -> MutexGuard<'_, State> {
        let elapsed = self.clock.elapsed();
        let now = self.clock.now();
        let mut state = lock(&self.state);
        if let Some(schedule) = &self.schedule {
            let origin = state.primary.layout.now;
            // Change `k` (from 1) is due `k / rate` seconds after the start, so that at the
            // start the dataset is exactly the initial one.
            while (state.scheduled + 1) as f64 / schedule.per_second <= elapsed {
                state.scheduled += 1;
                let k = state.scheduled;
                let at = origin + (k as f64 / schedule.per_second) as i64;
                let mut draws = Draws::new(state.primary.layout.seed, Domain::Changes, k);
                let kind = Kind::draw(schedule, &mut draws);
                if let Some(change) = resolve(&state.primary, kind, at, &mut draws) {
                    self.record(&mut state, change);
                }
            }
        }
        self.release(&mut state, now);
        state
    }

    fn record(&self, state: &mut State, change: Change) {
        Arc::make_mut(&mut state.primary).apply(change);
        if state.replica.is_none() {
            return;
        }
        state.made += 1;
        let delay = Draws::new(state.primary.layout.seed, Domain::Lag, state.made).below(self.lag as u64 + 1) as i64;
        let mut visible = change.at() + delay;
        if let Change::Insert { .. } = change {
            visible = visible.max(state.last_insert_visible);
            state.last_insert_visible = visible;
        }
        let row = state.visible_from.entry(change.index()).or_insert(visible);
        visible = visible.max(*row);
        *row = visible;
        state.in_flight.push((visible, state.made, change));
    }

    fn release(&self, state: &mut State, now: UnixSeconds) {
        let State { replica, in_flight, .. } = state;
        let Some(replica) = replica else { return };
        let (mut due, waiting): (Vec<_>, Vec<_>) = in_flight.drain(..).partition(|(visible, ..)| *visible <= now);
        *in_flight = waiting;
        due.sort_by_key(|(visible, made, _)| (*visible, *made));
        if !due.is_empty() {
            let replica = Arc::make_mut(replica);
            for (_, _, change) in due {
                replica.apply(change);
            }
        }
    }
}

impl Change {
    fn at(&self) -> UnixSeconds {
        match *self {
            Change::Update { at, .. } | Change::Insert { at, .. } | Change::Delete { at, .. } => at,
        }
    }

    fn index(&self) -> u32 {
        match *self {
            Change::Update { index, .. } | Change::Insert { index, .. } | Change::Delete { index, .. } => index,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Update,
    Insert,
    Delete,
}

impl Kind {
    fn draw(mix: &ChangesConfig, draws: &mut Draws) -> Kind {
        let r = draws.below(u64::from(mix.updates + mix.inserts + mix.deletes)) as u32;
        if r < mix.updates {
            Kind::Update
        } else if r < mix.updates + mix.inserts {
            Kind::Insert
        } else {
            Kind::Delete
        }
    }
}

/// Picks the row a change applies to: a uniformly drawn live row, or `None` if none is live.
fn resolve(dataset: &Dataset, kind: Kind, at: UnixSeconds, draws: &mut Draws) -> Option<Change> {
    if kind == Kind::Insert {
        return Some(Change::Insert { index: dataset.index_count(), at });
    }
    let n = dataset.index_count();
    if n == 0 {
        return None;
    }
    let mut index = draws.below(u64::from(n)) as u32;
    for _ in 0..32 {
        if dataset.is_live(index) {
            break;
        }
        index = draws.below(u64::from(n)) as u32;
    }
    // Mostly-deleted datasets: walk to the next live row.
    let index = (0..n).map(|step| (index + step) % n).find(|i| dataset.is_live(*i))?;
    Some(match kind {
        Kind::Update => Change::Update { index, at },
        _ => Change::Delete { index, at },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::DeleteMode;
    use crate::layout::Layout;

    const NOW: UnixSeconds = 1_795_000_000;

    fn live(users: u32, schedule: Option<ChangesConfig>, lag: u32) -> Live {
        let layout = Arc::new(Layout::new(11, users, NOW, 50, None, None));
        Live::new(Dataset::new(layout, DeleteMode::Vanish), Clock::manual(NOW), schedule, lag)
    }

    #[test]
    fn scheduled_changes_are_a_function_of_seed_and_clock() {
        let a = live(100, Some(ChangesConfig::at_rate(10.0)), 0);
        let b = live(100, Some(ChangesConfig::at_rate(10.0)), 0);
        a.clock.advance(Duration::from_secs(30));
        b.clock.advance(Duration::from_secs(10));
        let _ = b.view();
        b.clock.advance(Duration::from_secs(20));
        let rows = |l: &Live| l.truth().all_rows().filter(|(_, v)| !v).map(|(r, _)| r).collect::<Vec<_>>();
        let (ra, rb) = (rows(&a), rows(&b));
        assert_eq!(ra, rb, "looking in between does not change the outcome");
        assert!(ra.len() > 100, "about 60 inserts over 30 s");
        assert!(ra.iter().any(|r| r.revision > 0), "some updates");
    }

    #[test]
    fn the_replica_shows_changes_only_after_the_lag() {
        let l = live(20, None, 5);
        let touched = l.change_now(ChangeBatch { updates: 1, inserts: 1, deletes: 1 });
        let inserted = touched.inserted[0];
        assert!(l.truth().index_count() > inserted, "the primary has the insert");
        l.clock.advance(Duration::from_secs(5));
        let view = l.view();
        assert_eq!(view.dataset.index_count(), 21, "every change is visible once the lag has passed");
        assert!(view.dataset.is_vanished(touched.deleted[0]));
        assert_eq!(view.base_end, 20, "every initial user is visible by now");
    }

    #[test]
    fn lagged_changes_appear_out_of_order_but_in_order_per_row() {
        let l = live(50, None, 60);
        let mut made = Vec::new();
        for second in 0..40 {
            l.clock.advance(Duration::from_secs(1));
            made.extend(
                l.change_now(ChangeBatch { updates: 1, ..Default::default() }).updated.into_iter().map(|i| (i, second)),
            );
        }
        let mut seen_order = Vec::new();
        for _ in 0..120 {
            l.clock.advance(Duration::from_secs(1));
            let view = l.view();
            for &(index, _) in &made {
                if view.dataset.row(index).revision > 0 && !seen_order.contains(&index) {
                    seen_order.push(index);
                }
            }
        }
        let truth = l.truth();
        let replica = l.view().dataset;
        let rows = |d: &Dataset| (0..50).map(|i| d.row(i)).collect::<Vec<_>>();
        assert_eq!(rows(&replica), rows(&truth), "after the lag the replica equals the primary");
        let stamps: Vec<i64> = seen_order.iter().map(|&i| truth.row(i).updated_at).collect();
        assert!(stamps.windows(2).any(|w| w[0] > w[1]), "some rows became visible after newer ones");
    }

    #[test]
    fn initial_users_newer_than_the_lag_are_hidden_at_start() {
        let l = live(200, None, 7200);
        let view = l.view();
        assert!(
            view.base_end < 200 && view.base_end > 195,
            "the last two hours hold one or two users: {}",
            view.base_end
        );
        let lagged = view.dataset.layout.updated_at(view.base_end);
        assert!(lagged > l.clock.now() - 7200);
    }

    #[test]
    fn manual_changes_pick_live_rows_and_report_them() {
        let l = live(5, None, 0);
        let first = l.change_now(ChangeBatch { deletes: 5, ..Default::default() });
        let mut deleted = first.deleted.clone();
        deleted.sort_unstable();
        assert_eq!(deleted, vec![0, 1, 2, 3, 4], "five deletes remove five distinct users");
        let none_left = l.change_now(ChangeBatch { updates: 1, deletes: 1, ..Default::default() });
        assert!(none_left.updated.is_empty() && none_left.deleted.is_empty());
    }
}
