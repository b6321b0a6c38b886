-- Runs moving a template's tickets from one version to another (#16 point 5): the job
-- `templates.migrate` works through the tickets in batches from `after_ticket` on, so a run
-- survives a restart and shows its progress. docs/process-guide.md.
CREATE TABLE template_migrations (
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    id            TEXT NOT NULL,
    template_id   TEXT NOT NULL,
    from_version  INTEGER NOT NULL,
    to_version    INTEGER NOT NULL,
    -- {"states": {old: new}, "fields": {old: new}} as asked
    mapping       TEXT NOT NULL,
    -- tickets filed up to this instant move; later ones are left alone
    filed_by      TEXT NOT NULL,
    -- running or done
    status        TEXT NOT NULL,
    -- the last ticket handled (id order), none before the first batch
    after_ticket  TEXT,
    tickets       BIGINT NOT NULL,
    moved         BIGINT NOT NULL,
    blocked_count BIGINT NOT NULL,
    -- [{from_state, to_state, count}], the first 500 blocked tickets, the dropped fields
    moves         TEXT NOT NULL,
    blocked       TEXT NOT NULL,
    fields_dropped TEXT NOT NULL,
    actor_kind    TEXT NOT NULL,
    actor_id      TEXT,
    actor_name    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    finished_at   TEXT,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, template_id) REFERENCES templates (tenant_id, id)
);
CREATE INDEX template_migrations_of_template ON template_migrations (tenant_id, template_id, id);
