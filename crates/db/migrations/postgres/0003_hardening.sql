-- Hardening of sign-in (issue 14). A password set by someone else (a reset) must be changed
-- at the next sign-in; a session belongs to the listener it began on (portal or operators').
ALTER TABLE users ADD COLUMN must_change_password BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN listener TEXT NOT NULL DEFAULT 'portal';
