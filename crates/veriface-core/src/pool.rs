//! A bounded pool for CPU-bound inference, with load shedding.
//!
//! Face analysis costs seconds of CPU. Run on the async runtime it would
//! stall every other request; queued without bound it would turn a burst
//! into minutes of latency and unbounded memory (each waiting request holds
//! its upload). So at most `workers` jobs run at once, on tokio's blocking
//! threads, at most `queue_capacity` more wait for a slot, and the rest are
//! refused at once with [`Error::Overloaded`] (HTTP 503 with `Retry-After`).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use veriface_core::pool::InferencePool;
//!
//! let pool = InferencePool::new(2, 8);
//! let answer = pool.run(|| Ok(6 * 7)).await.unwrap();
//! assert_eq!(answer, 42);
//! # }
//! ```

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{Semaphore, TryAcquireError};

use crate::{Error, Result};

/// Bounded inference executor; cheap to clone (clones share the pool).
#[derive(Debug, Clone)]
pub struct InferencePool {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    slots: Arc<Semaphore>,
    workers: usize,
    queue_capacity: usize,
    queued: AtomicUsize,
    running: AtomicUsize,
    /// Exponentially weighted mean job time in microseconds, for the
    /// `Retry-After` estimate.
    mean_job_us: AtomicU64,
}

impl InferencePool {
    /// A pool running at most `workers` jobs at once (at least 1) with at
    /// most `queue_capacity` waiting (0: refuse whenever all workers are
    /// busy).
    pub fn new(workers: usize, queue_capacity: usize) -> Self {
        let workers = workers.max(1);
        Self {
            inner: Arc::new(Inner {
                slots: Arc::new(Semaphore::new(workers)),
                workers,
                queue_capacity,
                queued: AtomicUsize::new(0),
                running: AtomicUsize::new(0),
                // A face comparison's order of magnitude until measured.
                mean_job_us: AtomicU64::new(1_000_000),
            }),
        }
    }

    /// How many jobs run at once.
    pub fn workers(&self) -> usize {
        self.inner.workers
    }

    /// The worker slots themselves, for work that is queued elsewhere (the
    /// enrolment jobs) but must share these cores with the requests.
    pub fn permits(&self) -> Arc<Semaphore> {
        Arc::clone(&self.inner.slots)
    }

    /// How many jobs may wait for a worker.
    pub fn queue_capacity(&self) -> usize {
        self.inner.queue_capacity
    }

    /// Jobs waiting for a worker now.
    pub fn queued(&self) -> usize {
        self.inner.queued.load(Ordering::Relaxed)
    }

    /// Jobs running now.
    pub fn running(&self) -> usize {
        self.inner.running.load(Ordering::Relaxed)
    }

    /// Runs `job` on a blocking thread once a worker is free, inside the
    /// caller's tracing span.
    ///
    /// Dropping the returned future while it waits gives its queue place
    /// back; once the job has started it runs to the end (CPU work cannot
    /// be interrupted) and keeps its worker until then, so the pool never
    /// runs more than `workers` jobs even when clients time out.
    ///
    /// # Errors
    /// [`Error::Overloaded`] when every worker is busy and the queue is
    /// full; the job's own error; [`Error::Internal`] if the job panicked.
    pub async fn run<T, F>(&self, job: F) -> Result<T>
    where
        F: FnOnce() -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let inner = &self.inner;
        let permit = match inner.slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(TryAcquireError::NoPermits) => {
                let admitted = inner
                    .queued
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                        (q < inner.queue_capacity).then_some(q + 1)
                    })
                    .is_ok();
                if !admitted {
                    metrics::counter!("veriface_inference_rejected_total").increment(1);
                    return Err(Error::Overloaded {
                        retry_after_secs: self.retry_after_secs(),
                    });
                }
                let _slot = QueueSlot(&inner.queued);
                metrics::gauge!("veriface_inference_queued").set(self.queued() as f64);
                inner
                    .slots
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|e| Error::Internal(Box::new(e)))?
            }
            Err(e @ TryAcquireError::Closed) => return Err(Error::Internal(Box::new(e))),
        };
        metrics::gauge!("veriface_inference_queued").set(self.queued() as f64);

        let span = tracing::Span::current();
        let pool = self.clone();
        let handle = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let _running = RunningSlot::enter(&pool.inner.running);
            let started = Instant::now();
            let out = span.in_scope(job);
            pool.observe(started.elapsed().as_micros());
            out
        });
        handle.await.map_err(|e| Error::Internal(Box::new(e)))?
    }

    /// Refuses at once when every worker is busy and the queue is full, as
    /// [`InferencePool::run`] would, but before the caller has spent
    /// anything on the request (reading and decoding a large body). A hint
    /// only: `run` still decides.
    ///
    /// # Errors
    /// [`Error::Overloaded`] with the `Retry-After` estimate.
    pub fn admit_early(&self) -> Result<()> {
        let full =
            self.inner.slots.available_permits() == 0 && self.queued() >= self.inner.queue_capacity;
        if full {
            metrics::counter!("veriface_inference_rejected_total").increment(1);
            return Err(Error::Overloaded {
                retry_after_secs: self.retry_after_secs(),
            });
        }
        Ok(())
    }

    /// Seconds until a slot is likely free for a newcomer: the queue ahead
    /// plus the running jobs, divided among the workers, at the mean job
    /// time. At least 1.
    pub fn retry_after_secs(&self) -> u64 {
        let mean_s = self.inner.mean_job_us.load(Ordering::Relaxed) as f64 / 1e6;
        let ahead = (self.queued() + self.running()).max(1) as f64;
        let secs = (mean_s * ahead / self.inner.workers as f64).ceil();
        (secs as u64).clamp(1, 3600)
    }

    fn observe(&self, micros: u128) {
        let sample = u64::try_from(micros).unwrap_or(u64::MAX);
        // Races between workers lose a sample at worst; this is a hint.
        let old = self.inner.mean_job_us.load(Ordering::Relaxed);
        let new = (old.saturating_mul(7) / 8).saturating_add(sample / 8);
        self.inner.mean_job_us.store(new, Ordering::Relaxed);
    }
}

/// A place in the wait queue, given back when the waiter gets a worker or
/// gives up (its future is dropped).
struct QueueSlot<'a>(&'a AtomicUsize);

impl Drop for QueueSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Counts a running job for as long as it runs.
struct RunningSlot<'a>(&'a AtomicUsize);

impl<'a> RunningSlot<'a> {
    fn enter(counter: &'a AtomicUsize) -> Self {
        let now = counter.fetch_add(1, Ordering::AcqRel) + 1;
        metrics::gauge!("veriface_inference_running").set(now as f64);
        Self(counter)
    }
}

impl Drop for RunningSlot<'_> {
    fn drop(&mut self) {
        let now = self.0.fetch_sub(1, Ordering::AcqRel).saturating_sub(1);
        metrics::gauge!("veriface_inference_running").set(now as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sheds_load_when_workers_and_queue_are_full() {
        let pool = InferencePool::new(1, 1);
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let running = {
            let pool = pool.clone();
            tokio::spawn(async move {
                pool.run(move || {
                    release_rx.recv().ok();
                    Ok(1)
                })
                .await
            })
        };
        while pool.running() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let waiting = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(|| Ok(2)).await })
        };
        while pool.queued() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let refused = pool.run(|| Ok(3)).await.unwrap_err();
        assert_eq!(refused.code(), "overloaded");
        assert!(matches!(refused, Error::Overloaded { retry_after_secs } if retry_after_secs >= 1));

        release_tx.send(()).unwrap();
        assert_eq!(running.await.unwrap().unwrap(), 1);
        assert_eq!(waiting.await.unwrap().unwrap(), 2);
        assert_eq!((pool.queued(), pool.running()), (0, 0));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_waiter_that_gives_up_frees_its_queue_place() {
        let pool = InferencePool::new(1, 1);
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let busy = {
            let pool = pool.clone();
            tokio::spawn(async move {
                pool.run(move || {
                    release_rx.recv().ok();
                    Ok(())
                })
                .await
            })
        };
        while pool.running() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let gave_up = tokio::time::timeout(Duration::from_millis(50), pool.run(|| Ok(()))).await;
        assert!(gave_up.is_err(), "the waiter should still be waiting");
        assert_eq!(pool.queued(), 0);
        release_tx.send(()).unwrap();
        busy.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_panicking_job_is_an_internal_error() {
        let pool = InferencePool::new(1, 0);
        let e = pool
            .run(|| -> Result<()> { panic!("boom") })
            .await
            .unwrap_err();
        assert_eq!(e.code(), "internal");
        // The worker slot came back.
        assert_eq!(pool.run(|| Ok(5)).await.unwrap(), 5);
    }
}
