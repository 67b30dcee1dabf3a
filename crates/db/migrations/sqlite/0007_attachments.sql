-- Attachments of applications (issue 16, WG-6): the protocol and other PDF documents the
-- applicant files with an application, size-limited; their SHA-256 is in the application's
-- content hash, which every ledger entry of the application records.
CREATE TABLE application_attachments (
    application_id TEXT NOT NULL REFERENCES applications (id),
    seq INTEGER NOT NULL,
    name TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    added_by TEXT NOT NULL,
    added_at INTEGER NOT NULL,
    content BLOB NOT NULL,
    PRIMARY KEY (application_id, seq)
);
