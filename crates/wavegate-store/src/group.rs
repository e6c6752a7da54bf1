//! Group commit for event aggregates: concurrent [`crate::Store::add_aggregates`] calls share
//! one transaction.
//!
//! Every call queues its deltas for one writer task per store and waits for that task's
//! answer. The task takes whatever has queued up while its previous transaction ran, merges it
//! (aggregates are sums, sketches bucket counts, so merging is exact up to float rounding),
//! writes it in one transaction and answers every caller in the group only after the commit.
//! So a caller still hears `Ok` only once its deltas are durable, but N concurrent batches cost
//! one transaction (one fsync, one write lock) instead of N queued behind each other on the
//! database's write lock.
//!
//! A group is all or nothing like a single call: if its transaction fails, each call in it is
//! retried alone, so one bad batch cannot fail the others and each caller gets its own result.
//! A caller that goes away (a dropped request) does not cancel the write of its deltas.
//!
//! **Idempotency:** a call may carry a key (the batch's `Idempotency-Key`). Keys are recorded in
//! the same transaction as the deltas; a call whose key is already recorded (a client's retry of
//! a batch whose answer it lost) adds nothing and is answered "duplicate", also when its first
//! copy is in the same group.

use std::collections::BTreeMap;
use std::future::Future;

use chrono::DateTime;
use tokio::sync::{mpsc, oneshot};

use crate::{AdoptionDelta, AggregateBatch, AggregateDelta, SketchDelta, StoreError, StoreResult};

/// Most calls merged into one transaction.
const MAX_GROUP: usize = 256;

/// Writes a group of calls in one transaction (the store's own SQL): records their keys, then
/// adds what the calls whose keys were new (or absent) bring, merged ([`merge`]). Answers per
/// call whether it was applied (false: a duplicate of a recorded key).
pub(crate) trait AggregateWriter: Send + Sync + 'static {
    fn write(
        &self,
        group: &[&AggregateBatch],
    ) -> impl Future<Output = StoreResult<Vec<bool>>> + Send;
}

struct Job {
    batch: AggregateBatch,
    done: oneshot::Sender<StoreResult<bool>>,
}

/// The queue to a store's writer task (started on first use, in the caller's runtime).
#[derive(Debug, Default)]
pub(crate) struct GroupCommit {
    tx: std::sync::Mutex<Option<mpsc::UnboundedSender<Job>>>,
}

impl GroupCommit {
    /// Queues the batch and waits until it is committed (alone or with others); true when it
    /// was applied, false when its key showed it a duplicate.
    /// `writer` makes the task if none runs; it must not hold this `GroupCommit` (or the
    /// task would keep its own queue open forever).
    pub(crate) async fn add<W: AggregateWriter>(
        &self,
        writer: impl FnOnce() -> W,
        batch: AggregateBatch,
    ) -> StoreResult<bool> {
        let (done, answer) = oneshot::channel();
        self.enqueue(Job { batch, done }, writer);
        // An error: the writer task's runtime shut down before it answered.
        answer.await.unwrap_or(Err(StoreError::Database(sqlx::Error::WorkerCrashed)))
    }

    fn enqueue<W: AggregateWriter>(&self, job: Job, writer: impl FnOnce() -> W) {
        let mut tx = self.tx.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let job = match tx.as_ref() {
            Some(queue) => match queue.send(job) {
                Ok(()) => return,
                // The task's runtime is gone (a store used from a second runtime): start a
                // new task in this one.
                Err(mpsc::error::SendError(job)) => job,
            },
            None => job,
        };
        let (queue, jobs) = mpsc::unbounded_channel();
        tokio::spawn(run(writer(), jobs));
        queue.send(job).unwrap_or_else(|_| unreachable!("the receiver was just created"));
        *tx = Some(queue);
    }
}

async fn run<W: AggregateWriter>(writer: W, mut jobs: mpsc::UnboundedReceiver<Job>) {
    while let Some(first) = jobs.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(j) => group.push(j),
                Err(_) => break,
            }
        }
        let batches: Vec<&AggregateBatch> = group.iter().map(|j| &j.batch).collect();
        let result = writer.write(&batches).await;
        match result {
            Ok(applied) => {
                for (j, applied) in group.into_iter().zip(applied) {
                    let _ = j.done.send(Ok(applied));
                }
            }
            Err(e) if group.len() == 1 => {
                if let Some(j) = group.pop() {
                    let _ = j.done.send(Err(e));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, calls = group.len(), "group commit of event aggregates failed; retrying each call alone");
                for j in group {
                    let result = writer.write(&[&j.batch]).await;
                    let _ = j.done.send(result.map(|applied| applied.first() == Some(&true)));
                }
            }
        }
    }
}

/// Adds sketch bucket counts `from` into `into` (sketches merge exactly by adding them).
pub(crate) fn add_counts(into: &mut BTreeMap<i32, u64>, from: &BTreeMap<i32, u64>) {
    for (k, v) in from {
        *into.entry(*k).or_default() += v;
    }
}

/// What a delta or sketch adds to: its cell and contributing token (rollout, wave, arm, metric,
/// source).
pub(crate) trait Cell {
    fn cell(&self) -> (&str, i64, &str, &str, &str);
}

impl Cell for AggregateDelta {
    fn cell(&self) -> (&str, i64, &str, &str, &str) {
        (&self.rollout, self.wave, &self.arm, &self.metric, &self.source)
    }
}

impl Cell for SketchDelta {
    fn cell(&self) -> (&str, i64, &str, &str, &str) {
        (&self.rollout, self.wave, &self.arm, &self.metric, &self.source)
    }
}

/// `rows` in cell order, rows of one cell folded into its first by `add`.
pub(crate) fn fold_cells<T: Cell + Clone>(rows: Vec<T>, add: fn(&mut T, &T)) -> Vec<T> {
    let mut rows = rows;
    rows.sort_by(|a, b| a.cell().cmp(&b.cell()));
    rows.dedup_by(|row, into| {
        let same = row.cell() == into.cell();
        if same {
            add(into, row);
        }
        same
    });
    rows
}

/// Merges a group in key order into what it writes: one delta per cell and contributing token
/// (their sums), one sketch per cell and token (bucket counts added up), one adoption row per
/// (rollout, user) (the latest days, the cohort of the call queued last), and the latest `at`.
pub(crate) fn merge(group: &[&AggregateBatch]) -> AggregateBatch {
    let deltas = fold_cells(group.iter().flat_map(|b| b.deltas.clone()).collect(), |into, d| {
        (into.n, into.sum, into.sumsq) = (into.n + d.n, into.sum + d.sum, into.sumsq + d.sumsq);
    });
    let sketches =
        fold_cells(group.iter().flat_map(|b| b.sketches.clone()).collect(), |into, s| {
            add_counts(&mut into.counts, &s.counts)
        });
    let mut users: BTreeMap<(&str, &str), AdoptionDelta> = BTreeMap::new();
    for a in group.iter().flat_map(|b| &b.adoption) {
        users
            .entry((a.rollout.as_str(), a.user.as_str()))
            .and_modify(|u| {
                u.cohort.clone_from(&a.cohort);
                u.exposed_day = u.exposed_day.max(a.exposed_day);
                u.task_day = u.task_day.max(a.task_day);
                u.wave = u.wave.min(a.wave);
            })
            .or_insert_with(|| a.clone());
    }
    let at = group.iter().map(|b| b.at).max().unwrap_or(DateTime::UNIX_EPOCH);
    AggregateBatch { deltas, sketches, adoption: users.into_values().collect(), at, key: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(arm: &str, metric: &str, n: f64, sum: f64, buckets: &[(i32, u64)]) -> AggregateBatch {
        AggregateBatch {
            deltas: vec![AggregateDelta {
                rollout: "r".into(),
                wave: 0,
                arm: arm.into(),
                metric: metric.into(),
                n,
                sum,
                sumsq: sum * sum,
                source: "tok_a".into(),
            }],
            sketches: vec![SketchDelta {
                rollout: "r".into(),
                wave: 0,
                arm: arm.into(),
                metric: "latency_ms".into(),
                counts: buckets.iter().copied().collect(),
                source: "tok_a".into(),
            }],
            adoption: vec![AdoptionDelta {
                rollout: "r".into(),
                user: arm.into(),
                cohort: format!("[\"{metric}\"]"),
                exposed_day: i64::from(buckets[0].0),
                task_day: (n > 2.0).then_some(i64::from(buckets[0].0)),
                wave: i64::from(buckets[0].0 % 3),
            }],
            at: DateTime::from_timestamp(i64::from(buckets[0].0), 0).unwrap(),
            key: None,
        }
    }

    #[test]
    fn merging_adds_cells_and_buckets_and_keeps_the_latest_time() {
        let group = [
            job("control", "error", 2.0, 1.0, &[(5, 1), (7, 2)]),
            job("control", "error", 3.0, 2.0, &[(7, 1)]),
            job("treatment", "error", 1.0, 0.0, &[(6, 4)]),
        ];
        let group: Vec<&AggregateBatch> = group.iter().collect();
        let AggregateBatch { deltas: d, sketches: s, adoption: users, at, .. } = merge(&group);
        assert_eq!(d.len(), 2);
        assert_eq!((d[0].arm.as_str(), d[0].n, d[0].sum, d[0].sumsq), ("control", 5.0, 3.0, 5.0));
        assert_eq!((d[1].arm.as_str(), d[1].n), ("treatment", 1.0));
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].counts, BTreeMap::from([(5, 1), (7, 3)]));
        assert_eq!(s[1].counts, BTreeMap::from([(6, 4)]));
        assert_eq!(at, DateTime::from_timestamp(7, 0).unwrap());
        // One row per user: control's latest exposure (7), its task day from the second call.
        assert_eq!(users.len(), 2);
        assert_eq!(
            (users[0].user.as_str(), users[0].exposed_day, users[0].task_day),
            ("control", 7, Some(7))
        );
        assert_eq!((users[1].user.as_str(), users[1].task_day), ("treatment", None));
    }
}
