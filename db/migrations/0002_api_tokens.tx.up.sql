-- 0002: API tokens for the operators' JSON API. Like sessions and portal
-- links, only the SHA-256 (hex) of a token is stored: the plain token is
-- shown once, when it is created, and a copy of the database cannot be
-- replayed against the API.
CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    token_hash   TEXT NOT NULL UNIQUE CHECK (length(token_hash) = 64),
    -- the e-mail of the admin who created it, kept as text like the audit
    -- log's actor so the record outlives the account.
    created_by   TEXT NOT NULL DEFAULT '',
    created_at   TIMESTAMP NOT NULL,
    -- refreshed at most once a minute, so reads do not become writes.
    last_used_at TIMESTAMP,
    revoked_at   TIMESTAMP
);
CREATE INDEX api_tokens_created ON api_tokens (created_at, id);
