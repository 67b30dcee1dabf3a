-- Tables the platform publishes itself, remembered by the airlock as released to everyone
-- (issue 22 §2; kura output publish): their names, so that a public table's differencing memory
-- that went missing is noticed (nothing is checked or released until it is restored).
CREATE TABLE airlock_public_tables (
    name TEXT PRIMARY KEY,
    published_at INTEGER NOT NULL,
    ledger_idx INTEGER NOT NULL
);
