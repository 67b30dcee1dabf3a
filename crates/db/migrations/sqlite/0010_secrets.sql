-- Secrets the workflows keep in the store of record (issue 17): the key that turns reviewers'
-- logins into the pseudonyms a project's members see (a keyed hash, so that a member who can
-- guess logins cannot test them). Made once, at random, on first use.
CREATE TABLE workflow_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
