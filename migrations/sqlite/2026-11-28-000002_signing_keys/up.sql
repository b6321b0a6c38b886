-- Access-token signing keys (Ed25519). The private half is sealed under the master key, which
-- is not in the database: a copy of the database cannot sign tokens.
CREATE TABLE signing_keys (
    kid         TEXT        NOT NULL PRIMARY KEY,
    algorithm   TEXT        NOT NULL,
    public_key  TEXT        NOT NULL,
    private_key TEXT        NOT NULL,
    created_at  TEXT        NOT NULL,
    retired_at  TEXT
);

-- The plaintext HS256 secret of earlier versions must not survive in the database.
DELETE FROM platform_settings WHERE key = 'jwt_secret';

-- API keys may expire.
ALTER TABLE api_keys ADD COLUMN expires_at TEXT;
