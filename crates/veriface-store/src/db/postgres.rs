//! What is particular to PostgreSQL: row locks for the job queue, so that
//! several workers (or server replicas) claim different jobs.

/// Takes the oldest ready job. `FOR UPDATE SKIP LOCKED` lets concurrent
/// claimers pass over a row another transaction is taking instead of
/// waiting for it and then finding it gone.
pub(crate) const CLAIM_JOB: &str = "UPDATE enrollment_jobs \
     SET state = 'running', attempts = attempts + 1, lease_until = $1, updated_at = $2 \
     WHERE id = (SELECT id FROM enrollment_jobs \
                 WHERE state = 'queued' AND available_at <= $2 ORDER BY id LIMIT 1 \
                 FOR UPDATE SKIP LOCKED) \
     RETURNING id, username, image, attempts";

/// Locks a job row inside the enrolment transaction, so that an erasure
/// deleting the job either commits first (the enrolment sees no job and
/// records nothing) or waits for the enrolment and then erases its result.
pub(crate) const LOCK_JOB: &str = "SELECT id FROM enrollment_jobs WHERE id = $1 FOR UPDATE";
