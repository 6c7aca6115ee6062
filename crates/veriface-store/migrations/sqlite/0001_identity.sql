-- Identity store (issue 4), SQLite flavour. Times are milliseconds since the Unix epoch (UTC);
-- embeddings are 128 little-endian f32 (512 bytes). Keep in step with ../postgres/0001_identity.sql:
-- the same contract tests run on both.

CREATE TABLE subjects (
    username    TEXT    PRIMARY KEY,
    verified    INTEGER NOT NULL DEFAULT 0 CHECK (verified IN (0, 1)),
    reason      TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    enrolled_at INTEGER
);

CREATE TABLE face_templates (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL REFERENCES subjects (username) ON DELETE CASCADE,
    embedding     BLOB    NOT NULL CHECK (length(embedding) = 512),
    model         TEXT    NOT NULL,
    model_version TEXT    NOT NULL,
    source_sha256 TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    -- One template per subject, photo and model: a photo enrolled twice stays one template.
    UNIQUE (username, source_sha256, model, model_version)
);
CREATE INDEX face_templates_by_model ON face_templates (model, model_version, id);

-- Deliveries already recorded (Kafka message coordinates, job ids): a redelivery changes nothing.
CREATE TABLE processed_deliveries (
    idempotency_key TEXT    PRIMARY KEY,
    username        TEXT    NOT NULL,
    created_at      INTEGER NOT NULL
);
CREATE INDEX processed_deliveries_by_username ON processed_deliveries (username);

-- Append-only log of decisions. subject_key is the hex sha256 of the username, so entries outlive
-- the subject's erasure without keeping the name in clear.
CREATE TABLE audit_log (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    subject_key     TEXT    NOT NULL,
    action          TEXT    NOT NULL,
    outcome         TEXT    NOT NULL,
    reason          TEXT,
    distance        REAL,
    idempotency_key TEXT,
    created_at      INTEGER NOT NULL
);
CREATE INDEX audit_log_by_subject ON audit_log (subject_key, id);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

-- The embedded durable queue: enrolments accepted over HTTP wait here (with their photo) for the
-- in-process worker.
CREATE TABLE enrollment_jobs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    username     TEXT    NOT NULL,
    image        BLOB,
    state        TEXT    NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    available_at INTEGER NOT NULL,
    lease_until  INTEGER,
    reason       TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX enrollment_jobs_ready ON enrollment_jobs (state, available_at, id);
CREATE INDEX enrollment_jobs_by_username ON enrollment_jobs (username);
