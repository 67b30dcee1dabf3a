-- Co-investigators confirm being members before an application is submitted (kura-workflows,
-- issue 16 review): nobody is put on a team — and so keeps reviewers of their institution out
-- by the conflict-of-interest rule — without saying so.
ALTER TABLE application_members ADD COLUMN joined_at BIGINT;
