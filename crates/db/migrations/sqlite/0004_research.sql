-- The research lifecycle (kura-workflows, issue 16): applications, their review and clock, and
-- the projects provisioned from them. Times are Unix seconds; states are the names
-- kura-workflows gives them.
CREATE TABLE applications (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL UNIQUE,
    applicant TEXT NOT NULL REFERENCES users (login),
    title TEXT NOT NULL,
    purpose TEXT NOT NULL,
    justification TEXT NOT NULL,
    ethics_ref TEXT NOT NULL,
    dataset TEXT NOT NULL,
    places TEXT NOT NULL,
    period_days INTEGER NOT NULL,
    conditions TEXT NOT NULL,
    state TEXT NOT NULL,
    submission INTEGER NOT NULL,
    round TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX applications_state ON applications (state);
CREATE TABLE application_columns (
    application_id TEXT NOT NULL REFERENCES applications (id),
    table_name TEXT NOT NULL,
    column_name TEXT NOT NULL,
    reason TEXT NOT NULL,
    approved INTEGER NOT NULL,
    PRIMARY KEY (application_id, table_name, column_name)
);
CREATE TABLE application_members (
    application_id TEXT NOT NULL REFERENCES applications (id),
    login TEXT NOT NULL REFERENCES users (login),
    PRIMARY KEY (application_id, login)
);
CREATE TABLE application_votes (
    application_id TEXT NOT NULL REFERENCES applications (id),
    submission INTEGER NOT NULL,
    reviewer TEXT NOT NULL REFERENCES users (login),
    approve INTEGER NOT NULL,
    comment TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (application_id, submission, reviewer)
);
CREATE TABLE application_events (
    application_id TEXT NOT NULL REFERENCES applications (id),
    seq INTEGER NOT NULL,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    step TEXT NOT NULL,
    from_state TEXT NOT NULL,
    to_state TEXT NOT NULL,
    note TEXT NOT NULL,
    ledger_idx INTEGER NOT NULL,
    PRIMARY KEY (application_id, seq)
);
CREATE TABLE projects (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL UNIQUE,
    application_id TEXT NOT NULL UNIQUE REFERENCES applications (id),
    dataset TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    ends_at INTEGER NOT NULL,
    ended_at INTEGER
);
CREATE TABLE project_members (
    project_id TEXT NOT NULL REFERENCES projects (id),
    login TEXT NOT NULL REFERENCES users (login),
    PRIMARY KEY (project_id, login)
);
CREATE TABLE project_columns (
    project_id TEXT NOT NULL REFERENCES projects (id),
    table_name TEXT NOT NULL,
    column_name TEXT NOT NULL,
    PRIMARY KEY (project_id, table_name, column_name)
);
