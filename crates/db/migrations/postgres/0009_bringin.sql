-- The airlock's bring-in (kura-workflows, issue 17 §4, HIC-IO1, HIC-S1): files a researcher
-- brings into a workspace, each scanned, then approved or rejected by a custodian; the history
-- of every step (each with its ledger entry); and every malware detection, in both directions,
-- for the operators (HIC-S1).
CREATE TABLE bringin_requests (
    id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL UNIQUE,
    project_id TEXT NOT NULL REFERENCES projects (id),
    author TEXT NOT NULL REFERENCES users (login),
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    note TEXT NOT NULL,
    bytes BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    state TEXT NOT NULL,
    scan TEXT NOT NULL,
    comment TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE bringin_events (
    request_id TEXT NOT NULL REFERENCES bringin_requests (id),
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    step TEXT NOT NULL,
    from_state TEXT NOT NULL,
    to_state TEXT NOT NULL,
    ledger_idx BIGINT NOT NULL,
    PRIMARY KEY (request_id, seq)
);
CREATE TABLE scan_detections (
    seq BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    direction TEXT NOT NULL,
    object TEXT NOT NULL,
    file_name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    engine TEXT NOT NULL,
    signature TEXT NOT NULL,
    actor TEXT NOT NULL,
    ledger_idx BIGINT NOT NULL
);
