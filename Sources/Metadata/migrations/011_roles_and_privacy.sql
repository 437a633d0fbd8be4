-- Issue 11 (isolation): roles, tokens and maps cannot cross their boundaries. Existing installs are
-- brought to the new rules here, and what changed is recorded in the audit log so `tessera migrate`
-- can report it (nothing silently disappears or silently stays open).

-- Maps get an explicit "organization" level between private (owner and admins) and public. What was
-- "private" was visible to the whole organisation, so it becomes "organization".
ALTER TABLE maps DROP CONSTRAINT IF EXISTS maps_privacy_check;
CREATE TEMP TABLE upgrade_011 ON COMMIT DROP AS
SELECT
    (SELECT count(*) FROM maps WHERE privacy = 'private') AS maps_to_organization,
    (SELECT count(*) FROM maps m WHERE EXISTS (
        SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(m.datasets) = 'array' THEN m.datasets ELSE '[]' END) d
        WHERE btrim(d->>'source') = '*')) AS wildcard_maps,
    (SELECT count(*) FROM maps m WHERE m.privacy = 'public' AND EXISTS (
        SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(m.datasets) = 'array' THEN m.datasets ELSE '[]' END) d
        WHERE btrim(d->>'source') = '*')) AS wildcard_maps_unpublished,
    -- Tokens whose creator is no longer a member (removed users' tokens were transferred or orphaned
    -- before); a map's own token belongs to the map and stays.
    (SELECT count(*) FROM api_tokens t WHERE NOT EXISTS (SELECT 1 FROM maps m WHERE m.token_id = t.id)
        AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = t.created_by AND u.account_id = t.account_id)) AS tokens_revoked,
    (SELECT count(*) FROM oauth_clients c
        WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = c.user_id AND u.account_id = c.account_id)) AS oauth_clients_revoked;

UPDATE maps SET privacy = 'organization' WHERE privacy = 'private';
ALTER TABLE maps ALTER COLUMN privacy SET DEFAULT 'private';
ALTER TABLE maps ADD CONSTRAINT maps_privacy_check CHECK (privacy IN ('private', 'organization', 'public'));

-- A `*` dataset handed the whole connection to everyone who opened the map: such maps stop being public
-- until edited (publishing is refused while a `*` dataset remains), and their tokens lose the `*` grant.
UPDATE maps m SET privacy = 'organization'
WHERE m.privacy = 'public' AND EXISTS (
    SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(m.datasets) = 'array' THEN m.datasets ELSE '[]' END) d
    WHERE btrim(d->>'source') = '*');
UPDATE api_tokens t SET grants = coalesce((SELECT jsonb_agg(g) FROM jsonb_array_elements(t.grants) g
                                           WHERE btrim(g->>'source') <> '*'), '[]')
WHERE EXISTS (SELECT 1 FROM maps m WHERE m.token_id = t.id)
  AND EXISTS (SELECT 1 FROM jsonb_array_elements(t.grants) g WHERE btrim(g->>'source') = '*');

-- Credentials of users already removed are revoked, not kept or transferred.
DELETE FROM api_tokens t WHERE NOT EXISTS (SELECT 1 FROM maps m WHERE m.token_id = t.id)
    AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = t.created_by AND u.account_id = t.account_id);
DELETE FROM oauth_clients c WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = c.user_id AND u.account_id = c.account_id);

-- Job listings are per owner.
CREATE INDEX IF NOT EXISTS jobs_account_creator ON jobs (account_id, created_by);

-- Login throttling is per (email, client address).
CREATE INDEX IF NOT EXISTS login_failures_ip_email ON login_failures (ip, email_key, at);

INSERT INTO audit_log (account_id, actor, action, details)
SELECT NULL, 'system:migration', 'upgrade_011_isolation', to_jsonb(u) FROM upgrade_011 u;
