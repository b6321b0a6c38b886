-- Notification rules (#15 point 5): which events of a template's tickets mail whom, and the
-- kinds of notification each user opted out of. docs/mail.md, "Notifications".
CREATE TABLE notification_rules (
    tenant_id    TEXT          NOT NULL REFERENCES tenants (id),
    id           TEXT          NOT NULL,
    template     TEXT        NOT NULL,
    -- created, transitioned, commented (public comments only), assigned
    event        TEXT        NOT NULL,
    -- transitioned: only into this state; NULL: any
    to_state     TEXT,
    -- JSON array of requester, watchers, assignee, group
    recipients   TEXT          NOT NULL,
    -- JSON array of fixed addresses (they see public fields only)
    addresses    TEXT          NOT NULL,
    -- ja or en
    language     TEXT        NOT NULL,
    description  TEXT        NOT NULL,
    enabled      BOOLEAN     NOT NULL,
    version      BIGINT      NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
-- What every ticket event looks up (in the event's transaction).
CREATE INDEX notification_rules_by_template ON notification_rules (tenant_id, template, event);

CREATE TABLE notification_opt_outs (
    tenant_id    TEXT          NOT NULL REFERENCES tenants (id),
    user_id      TEXT          NOT NULL,
    -- created, transitioned, commented, assigned
    kind         TEXT        NOT NULL,
    PRIMARY KEY (tenant_id, user_id, kind)
);
