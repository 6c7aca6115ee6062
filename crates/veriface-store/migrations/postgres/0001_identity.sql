-- Identity store (issue 4), PostgreSQL flavour. Times are milliseconds since the Unix epoch (UTC);
-- embeddings are 128 little-endian f32 (512 bytes). Keep in step with ../sqlite/0001_identity.sql:
-- the same contract tests run on both.

CREATE TABLE subjects (
    username    TEXT    PRIMARY KEY,
    verified    BOOLEAN NOT NULL DEFAULT FALSE,
    reason      TEXT,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    enrolled_at BIGINT
);

CREATE TABLE face_templates (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username      TEXT   NOT NULL REFERENCES subjects (username) ON DELETE CASCADE,
    embedding     BYTEA  NOT NULL CHECK (octet_length(embedding) = 512),
    model         TEXT   NOT NULL,
    model_version TEXT   NOT NULL,
    source_sha256 TEXT   NOT NULL,
    created_at    BIGINT NOT NULL,
    -- One template per subject, photo and model: a photo enrolled twice stays one template.
    UNIQUE (username, source_sha256, model, model_version)
);
CREATE INDEX face_templates_by_model ON face_templates (model, model_version, id);

-- Deliveries already recorded (Kafka message coordinates, job ids): a redelivery changes nothing.
CREATE TABLE processed_deliveries (
    idempotency_key TEXT   PRIMARY KEY,
    username        TEXT   NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX processed_deliveries_by_username ON processed_deliveries (username);

-- Append-only log of decisions. subject_key is the hex sha256 of the username, so entries outlive
-- the subject's erasure without keeping the name in clear.
CREATE TABLE audit_log (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject_key     TEXT   NOT NULL,
    action          TEXT   NOT NULL,
    outcome         TEXT   NOT NULL,
    reason          TEXT,
    distance        DOUBLE PRECISION,
    idempotency_key TEXT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX audit_log_by_subject ON audit_log (subject_key, id);
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- The embedded durable queue: enrolments accepted over HTTP wait here (with their photo) for the
-- in-process worker.
CREATE TABLE enrollment_jobs (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username     TEXT   NOT NULL,
    image        BYTEA,
    state        TEXT   NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    attempts     BIGINT NOT NULL DEFAULT 0,
    available_at BIGINT NOT NULL,
    lease_until  BIGINT,
    reason       TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX enrollment_jobs_ready ON enrollment_jobs (state, available_at, id);
CREATE INDEX enrollment_jobs_by_username ON enrollment_jobs (username);
