-- Accounts, certificates and sessions (kura-accounts, issue 4). Times are Unix seconds.
CREATE TABLE institutions (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE users (
    login TEXT PRIMARY KEY,
    institution TEXT NOT NULL REFERENCES institutions (code),
    role TEXT NOT NULL,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    password_hash TEXT,
    password_changed_at BIGINT,
    failed_logins BIGINT NOT NULL DEFAULT 0,
    locked_until BIGINT,
    totp_secret BYTEA,
    totp_pending BYTEA,
    totp_last_step BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    last_login_at BIGINT
);
CREATE TABLE password_history (
    login TEXT NOT NULL REFERENCES users (login),
    hash TEXT NOT NULL,
    set_at BIGINT NOT NULL
);
CREATE INDEX password_history_login ON password_history (login, set_at);
CREATE TABLE recovery_codes (
    login TEXT NOT NULL REFERENCES users (login),
    code_mac TEXT NOT NULL,
    used_at BIGINT,
    PRIMARY KEY (login, code_mac)
);
CREATE TABLE certificates (
    fingerprint TEXT PRIMARY KEY,
    serial TEXT NOT NULL,
    kind TEXT NOT NULL,
    login TEXT REFERENCES users (login),
    institution TEXT NOT NULL REFERENCES institutions (code),
    issued_at BIGINT NOT NULL,
    not_after BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX certificates_login ON certificates (login);
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    login TEXT NOT NULL REFERENCES users (login),
    fingerprint TEXT NOT NULL,
    state TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    ended_at BIGINT,
    ended_reason TEXT
);
CREATE INDEX sessions_login ON sessions (login, state);
