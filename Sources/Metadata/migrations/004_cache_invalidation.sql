-- Revocations and edits purge the http-cache however they happen (API, CLI, psql, another VM):
-- triggers queue `cdn` purge jobs by surrogate key for the cdn-invalidator. Each purge repeats at
-- 1.5 s and 4.2 s, while API processes may still accept the credential from their caches (1 s memo,
-- 3 s Redis) and Varnish could store such an answer again.
CREATE FUNCTION tessera_purge_cache(keys text[], account uuid) RETURNS void LANGUAGE sql AS $$
    WITH queued AS (
        INSERT INTO jobs (queue, kind, payload, account_id, max_attempts, run_at)
        SELECT 'cdn', 'purge', jsonb_build_object('keys', to_jsonb(keys)), account, 20, now() + make_interval(secs => d)
        FROM unnest(ARRAY[0, 1.5, 4.2]) AS d
        RETURNING id
    )
    SELECT pg_notify('tessera_jobs_cdn', min(id)::text) FROM queued;
$$;

CREATE FUNCTION tessera_purge_on_token_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tessera_purge_cache(ARRAY['cred:token:' || OLD.id], OLD.account_id);
    RETURN NULL;
END $$;
CREATE TRIGGER api_tokens_purge AFTER DELETE OR UPDATE ON api_tokens
    FOR EACH ROW EXECUTE FUNCTION tessera_purge_on_token_change();

CREATE FUNCTION tessera_purge_on_user_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tessera_purge_cache(ARRAY['cred:user:' || OLD.id], OLD.account_id);
    RETURN NULL;
END $$;
CREATE TRIGGER users_purge AFTER DELETE OR UPDATE OF role, password_hash ON users
    FOR EACH ROW EXECUTE FUNCTION tessera_purge_on_user_change();

-- Sessions and OAuth clients act as their user: ending one purges what was stored for the user.
CREATE FUNCTION tessera_purge_on_user_credential_end() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tessera_purge_cache(ARRAY['cred:user:' || OLD.user_id], NULL);
    RETURN NULL;
END $$;
CREATE TRIGGER sessions_purge AFTER DELETE ON sessions
    FOR EACH ROW WHEN (OLD.expires_at > now()) EXECUTE FUNCTION tessera_purge_on_user_credential_end();
CREATE TRIGGER oauth_clients_purge AFTER DELETE ON oauth_clients
    FOR EACH ROW EXECUTE FUNCTION tessera_purge_on_user_credential_end();

CREATE FUNCTION tessera_purge_on_connection_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tessera_purge_cache(ARRAY['conn:' || OLD.account_id || ':' || OLD.name], OLD.account_id);
    RETURN NULL;
END $$;
CREATE TRIGGER connections_purge AFTER DELETE OR UPDATE ON connections
    FOR EACH ROW EXECUTE FUNCTION tessera_purge_on_connection_change();
