-- Workspaces and the end of use (kura-workflows, issue 16 §2–§3): the applicant's notice, who
-- ended a project, and the SHA-256 of its deletion certificate (recorded in the ledger).
ALTER TABLE projects ADD COLUMN notice_at INTEGER;
ALTER TABLE projects ADD COLUMN ended_by TEXT;
ALTER TABLE projects ADD COLUMN certificate_sha256 TEXT;
-- Sample and trial datasets (HIC-P2): any signed-in researcher may query them without an
-- application.
CREATE TABLE sample_datasets (
    dataset TEXT PRIMARY KEY,
    published_by TEXT NOT NULL REFERENCES users (login),
    published_at INTEGER NOT NULL,
    note TEXT NOT NULL
);
