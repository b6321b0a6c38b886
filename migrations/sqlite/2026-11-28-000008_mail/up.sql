-- Mail channels and the messages they take in (and later send) (#15). A message is recorded
-- before anything else happens to it, with its raw bytes while it waits for the virus
-- scanner (`pending`) or is quarantined (sealed under the master key); once filed, the raw
-- message is an `.eml` attachment of its ticket and the column is emptied. docs/mail.md.
CREATE TABLE mail_channels (
    tenant_id            TEXT    NOT NULL REFERENCES tenants (id),
    id                   TEXT    NOT NULL,
    -- lower-cased; unique per tenant
    address              TEXT    NOT NULL,
    description          TEXT    NOT NULL,
    -- the template new tickets are filed in
    template             TEXT    NOT NULL,
    -- JSON: field values of every new ticket; the subject and body fields; reply transitions
    -- ([{"from": [state…], "transition": key}]); domain → organization
    defaults             TEXT    NOT NULL,
    subject_field        TEXT    NOT NULL,
    body_field           TEXT    NOT NULL,
    reply_transitions    TEXT    NOT NULL,
    -- create_requester or refuse
    unknown_senders      TEXT    NOT NULL,
    organization_domains TEXT    NOT NULL,
    max_message_bytes    BIGINT  NOT NULL,
    max_attachments      INTEGER NOT NULL,
    enabled              BOOLEAN NOT NULL,
    version              BIGINT  NOT NULL,
    created_at           TEXT    NOT NULL,
    updated_at           TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX mail_channels_address ON mail_channels (tenant_id, address);

CREATE TABLE mail_messages (
    tenant_id     TEXT    NOT NULL REFERENCES tenants (id),
    id            TEXT    NOT NULL,
    channel_id    TEXT,
    -- in or out
    direction     TEXT    NOT NULL,
    -- the Message-ID header without <>, for threading (ours for mail we send)
    message_id    TEXT,
    -- pending, filed, commented, ignored, refused, quarantined, failed, sent
    status        TEXT    NOT NULL,
    reason        TEXT,
    -- the scanner's signature name of a quarantined message
    signature     TEXT,
    sender        TEXT    NOT NULL,
    subject       TEXT    NOT NULL,
    size          BIGINT  NOT NULL,
    sha256        TEXT    NOT NULL,
    ticket_id     TEXT,
    -- the raw message while pending or quarantined (then sealed); NULL once filed
    raw           BLOB,
    attempts      INTEGER NOT NULL,
    received_at   TEXT    NOT NULL,
    processed_at  TEXT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX mail_messages_thread ON mail_messages (tenant_id, message_id);
CREATE INDEX mail_messages_channel ON mail_messages (tenant_id, channel_id, id);
CREATE INDEX mail_messages_sender ON mail_messages (tenant_id, sender, received_at);
CREATE INDEX mail_messages_pending ON mail_messages (status, received_at);
