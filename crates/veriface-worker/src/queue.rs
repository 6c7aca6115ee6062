//! The embedded worker: drains the durable job table
//! ([`veriface_core::identity::JobQueue`]) inside the server process, so
//! that `veriface serve` enrols asynchronously without any broker and loses
//! nothing across a restart (a job claimed by a process that died is put
//! back when its lease expires).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};
use veriface_core::enrol::{EnrolOutcome, EnrolRequest, IdentityService};
use veriface_core::identity::{Job, JobQueue};
use veriface_core::ErrorKind;

/// Settings of the embedded worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueWorkerConfig {
    /// How long a claimed job is reserved; a job whose worker died is
    /// retried after this.
    pub lease: Duration,
    /// How often an idle worker looks for jobs enqueued by other processes
    /// (jobs enqueued in-process wake it at once through [`QueueWaker`]).
    pub poll_interval: Duration,
    /// Attempts before a job that keeps failing is marked failed.
    pub max_attempts: u32,
    /// Delay before a failed attempt is retried.
    pub retry_delay: Duration,
}

impl Default for QueueWorkerConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(300),
            poll_interval: Duration::from_secs(2),
            max_attempts: 5,
            retry_delay: Duration::from_secs(5),
        }
    }
}

/// Wakes an idle worker when a job is enqueued in the same process.
#[derive(Debug, Clone, Default)]
pub struct QueueWaker(Arc<Notify>);

impl QueueWaker {
    /// A waker over a [`Notify`] that others hold too (the HTTP layer
    /// notifies it after each enqueue).
    pub fn from_notify(notify: Arc<Notify>) -> Self {
        Self(notify)
    }

    /// Tells the worker there is work.
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// Drains the job table.
#[derive(Debug, Clone)]
pub struct QueueWorker {
    queue: Arc<dyn JobQueue>,
    service: Arc<IdentityService>,
    config: QueueWorkerConfig,
    waker: QueueWaker,
}

impl QueueWorker {
    /// A worker over `queue`, enrolling through `service`.
    pub fn new(
        queue: Arc<dyn JobQueue>,
        service: Arc<IdentityService>,
        config: QueueWorkerConfig,
    ) -> Self {
        Self {
            queue,
            service,
            config,
            waker: QueueWaker::default(),
        }
    }

    /// Uses `waker` instead of a fresh one.
    pub fn with_waker(mut self, waker: QueueWaker) -> Self {
        self.waker = waker;
        self
    }

    /// The handle that wakes this worker (give it to whoever enqueues).
    pub fn waker(&self) -> QueueWaker {
        self.waker.clone()
    }

    /// Runs until `shutdown` turns true, finishing the job in hand first.
    /// Returns the number of jobs finished (done or failed for good).
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) -> u64 {
        let mut finished = 0;
        let mut last_requeue: Option<Instant> = None;
        loop {
            if *shutdown.borrow() {
                break;
            }
            // Leases expire in minutes; checking a few times per lease is
            // plenty and keeps the query off the hot path.
            if last_requeue.is_none_or(|t| t.elapsed() >= self.config.lease / 4) {
                match self.queue.requeue_expired().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(jobs = n, "requeued jobs with expired leases"),
                    Err(e) => tracing::warn!(error = %e, "requeue of expired jobs failed"),
                }
                last_requeue = Some(Instant::now());
            }
            match self.queue.claim(self.config.lease).await {
                Ok(Some(job)) => {
                    if self.process(job).await {
                        finished += 1;
                    }
                }
                Ok(None) => {
                    tokio::select! {
                        _ = self.waker.0.notified() => {}
                        _ = tokio::time::sleep(self.config.poll_interval) => {}
                        _ = shutdown.changed() => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "claiming a job failed");
                    tokio::select! {
                        _ = tokio::time::sleep(self.config.poll_interval) => {}
                        _ = shutdown.changed() => {}
                    }
                }
            }
        }
        finished
    }

    /// Runs one job; true when it reached a final state.
    async fn process(&self, job: Job) -> bool {
        let id = job.id;
        let attempts = job.attempts;
        let req = EnrolRequest {
            username: job.username,
            image: job.image,
            idempotency_key: format!("job:{}", id.0),
            job: Some(id),
        };
        let result = match self.service.enrol(req).await {
            Ok(outcome) => {
                let code = match &outcome {
                    EnrolOutcome::Enrolled { .. } => "enrolled",
                    EnrolOutcome::Rejected { reason } => reason.as_str(),
                    EnrolOutcome::AlreadyRecorded => "already_recorded",
                    // The job row is gone; nothing to mark.
                    EnrolOutcome::Cancelled => return true,
                };
                tracing::info!(job = id.0, outcome = code, "enrolment job finished");
                self.queue.complete(id, code).await.map(|()| true)
            }
            Err(e) => {
                let give_up =
                    attempts >= self.config.max_attempts || e.kind() == ErrorKind::InvalidInput;
                tracing::warn!(job = id.0, attempts, error = %e, code = e.code(), give_up, "enrolment job failed");
                let retry = (!give_up).then_some(self.config.retry_delay);
                self.queue.fail(id, e.code(), retry).await.map(|()| give_up)
            }
        };
        // If even recording the outcome failed, the lease expires and the
        // job runs again; the enrolment itself is idempotent on its key.
        result.unwrap_or_else(|e| {
            tracing::warn!(job = id.0, error = %e, "recording a job's outcome failed");
            false
        })
    }
}
