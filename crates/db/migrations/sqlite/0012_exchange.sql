-- Exchange between institutions (kura-workflows, issue 18 §3; HX-7, HX-8, NET-3, NET-4): closed
-- groups an operator defines, the files sent (each sealed under a key of its own, wrapped under
-- the home's exchange key and kept here until the file is deleted), the receivers fixed at
-- sending, and every step of a file's trail with its ledger entry.
CREATE TABLE exchange_groups (
    name TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE exchange_group_members (
    group_name TEXT NOT NULL REFERENCES exchange_groups (name),
    institution TEXT NOT NULL REFERENCES institutions (code),
    PRIMARY KEY (group_name, institution)
);
CREATE TABLE exchange_transfers (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL UNIQUE,
    sender_institution TEXT NOT NULL REFERENCES institutions (code),
    sender TEXT NOT NULL REFERENCES users (login),
    addressed_to TEXT NOT NULL,
    name TEXT NOT NULL,
    note TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    salt TEXT NOT NULL,
    state TEXT NOT NULL,
    wrapped_key TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    deleted_at INTEGER
);
CREATE TABLE exchange_recipients (
    transfer_id TEXT NOT NULL REFERENCES exchange_transfers (id),
    institution TEXT NOT NULL REFERENCES institutions (code),
    PRIMARY KEY (transfer_id, institution)
);
CREATE INDEX exchange_recipients_institution ON exchange_recipients (institution);
CREATE TABLE exchange_events (
    transfer_id TEXT NOT NULL REFERENCES exchange_transfers (id),
    seq INTEGER NOT NULL,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    institution TEXT NOT NULL,
    step TEXT NOT NULL,
    ledger_idx INTEGER NOT NULL,
    PRIMARY KEY (transfer_id, seq)
);
