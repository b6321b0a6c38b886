-- Each backup run and the check of its generation (#17 point 1), for the operator's API and
-- the metrics: when the last one succeeded, how large it was, whether it verified.
-- Platform-wide (no tenant): a backup holds every tenant. docs/operations.md.
CREATE TABLE backup_runs (
    id               UUID PRIMARY KEY,
    -- the generation's name (its start instant); none when the run failed before writing one
    generation       TEXT,
    started_at       TIMESTAMPTZ NOT NULL,
    finished_at      TIMESTAMPTZ NOT NULL,
    -- ok or failed
    status           TEXT NOT NULL,
    error            TEXT,
    database_bytes   BIGINT NOT NULL,
    row_count        BIGINT NOT NULL,
    attachments      BIGINT NOT NULL,
    attachment_bytes BIGINT NOT NULL,
    -- copied to STAGEFLOW_BACKUP_COPY_DIR
    copied           BOOLEAN NOT NULL,
    verified_at      TIMESTAMPTZ,
    verified         BOOLEAN,
    verify_error     TEXT,
    -- the node (job runner) or "cli"
    made_by          TEXT NOT NULL
);
