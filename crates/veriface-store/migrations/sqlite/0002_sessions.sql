-- Verification sessions (issue 5), sqlite flavour. Keep in step with the other backend's
-- 0002_sessions.sql: the same contract tests run on both. Times are milliseconds since the Unix epoch.
-- No personal data is kept here: the images are in the blob store (deleted when the session ends)
-- and `decision` holds reason codes, scores, formats and the model, never names or numbers.

CREATE TABLE verification_sessions (
    id               TEXT    PRIMARY KEY,
    state            TEXT    NOT NULL CHECK (state IN ('created', 'collecting', 'submitted',
                         'processing', 'verified', 'rejected', 'needs_review', 'cancelled', 'expired')),
    -- Which images are in the blob store (0 or 1 each).
    has_id_front     INTEGER NOT NULL DEFAULT 0,
    has_id_back      INTEGER NOT NULL DEFAULT 0,
    has_selfie       INTEGER NOT NULL DEFAULT 0,
    webhook_url      TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    -- An open (created or collecting) session expires at this time.
    expires_at       INTEGER NOT NULL,
    -- Processing: attempts so far, and until when the current processor holds the session.
    attempts         INTEGER NOT NULL DEFAULT 0,
    lease_until      INTEGER,
    -- The decision as JSON (outcome, reasons, scores, model and version, threshold).
    decision         TEXT,
    -- Webhook delivery of the final state: NULL (none), pending, delivered or failed (gave up).
    webhook_state    TEXT CHECK (webhook_state IN ('pending', 'delivered', 'failed')),
    webhook_attempts INTEGER NOT NULL DEFAULT 0,
    webhook_next_at  INTEGER
);
CREATE INDEX verification_sessions_by_state ON verification_sessions (state, updated_at);
CREATE INDEX verification_sessions_open ON verification_sessions (state, expires_at);
CREATE INDEX verification_sessions_webhooks ON verification_sessions (webhook_state, webhook_next_at);
