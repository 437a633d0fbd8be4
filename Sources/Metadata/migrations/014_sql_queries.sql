-- Issue 14 (SQL editor): each user's query history and saved queries. Personal, like a browser's history:
-- they go with their user (unlike maps, which pass to an admin), and nobody else lists them.
CREATE TABLE sql_queries (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id       uuid NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    user_id          uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind             text NOT NULL CHECK (kind IN ('history', 'saved')),
    -- Saved queries have a name; history entries do not.
    name             text CHECK (length(name) BETWEEN 1 AND 200),
    connection_name  text NOT NULL CHECK (length(connection_name) BETWEEN 1 AND 200),
    sql              text NOT NULL CHECK (length(sql) BETWEEN 1 AND 1048576),
    -- How the run went (history only): rows of the first page, time to it, or the error.
    row_count        bigint,
    duration_ms      double precision,
    error            text CHECK (length(error) <= 2000),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'saved') = (name IS NOT NULL))
);
CREATE INDEX sql_queries_user ON sql_queries (user_id, kind, updated_at DESC);
