-- The airlock's take-out (kura-workflows, issue 17 §3, issue 22 §3): output requests, their
-- files with the hash taken when each was made, the automatic verdicts, the reviewers' votes
-- and confirmations, and the history of every step (each with its ledger entry).
CREATE TABLE output_requests (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL UNIQUE,
    project_id TEXT NOT NULL REFERENCES projects (id),
    author TEXT NOT NULL REFERENCES users (login),
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    submission INTEGER NOT NULL,
    exception_reason TEXT,
    policy TEXT NOT NULL,
    package_sha256 TEXT,
    released_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE output_files (
    request_id TEXT NOT NULL REFERENCES output_requests (id),
    n INTEGER NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    note TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    sql_sha256 TEXT,
    status TEXT NOT NULL,
    verdict TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (request_id, n)
);
CREATE TABLE output_reviews (
    request_id TEXT NOT NULL REFERENCES output_requests (id),
    submission INTEGER NOT NULL,
    reviewer TEXT NOT NULL REFERENCES users (login),
    decision TEXT NOT NULL,
    comment TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (request_id, submission, reviewer)
);
CREATE TABLE output_confirmations (
    request_id TEXT NOT NULL REFERENCES output_requests (id),
    submission INTEGER NOT NULL,
    reviewer TEXT NOT NULL REFERENCES users (login),
    what TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (request_id, submission, reviewer, what)
);
CREATE TABLE output_events (
    request_id TEXT NOT NULL REFERENCES output_requests (id),
    seq INTEGER NOT NULL,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    step TEXT NOT NULL,
    from_state TEXT NOT NULL,
    to_state TEXT NOT NULL,
    note TEXT NOT NULL,
    ledger_idx INTEGER NOT NULL,
    PRIMARY KEY (request_id, seq)
);
