-- Workspace events (queue `workspace`, consumed by tessera-workspace-subscriber). When a user is removed,
-- the subscriber moves what they owned to the admin who removed them. Foreign keys with ON DELETE
-- SET NULL / CASCADE would erase (or delete) those rows' ownership in the deleting transaction, before
-- the subscriber runs, so ownership columns keep the removed user's id until the transfer instead.
-- An OAuth client whose user is gone authenticates nobody (the role lookup joins users) until then.
ALTER TABLE connections DROP CONSTRAINT IF EXISTS connections_created_by_fkey;
ALTER TABLE api_tokens DROP CONSTRAINT IF EXISTS api_tokens_created_by_fkey;
ALTER TABLE oauth_clients DROP CONSTRAINT IF EXISTS oauth_clients_user_id_fkey;

CREATE INDEX connections_created_by ON connections (created_by);
CREATE INDEX api_tokens_created_by ON api_tokens (created_by);
CREATE INDEX oauth_clients_user ON oauth_clients (user_id);
-- A removed user's unfinished jobs are cancelled by creator.
CREATE INDEX jobs_open_by_creator ON jobs (created_by) WHERE state IN ('available', 'running', 'retryable');
