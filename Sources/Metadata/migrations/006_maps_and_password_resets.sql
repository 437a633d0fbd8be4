-- Builder maps (keplerMapConfig + datasets, as fetchMap reads them) and password reset tokens.

CREATE TABLE maps (
    -- Short random ids: they appear in public links (/api/v3/maps/public/{id}).
    id                 text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_-]{6,64}$'),
    account_id         uuid NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    owner_id           uuid REFERENCES users(id) ON DELETE SET NULL,
    title              text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description        text NOT NULL DEFAULT '' CHECK (length(description) <= 5000),
    privacy            text NOT NULL DEFAULT 'private' CHECK (privacy IN ('private', 'public')),
    kepler_map_config  jsonb NOT NULL,
    datasets           jsonb NOT NULL DEFAULT '[]',
    -- The map's own API access token (grants = its datasets' sources); replaced when datasets change.
    token_id           uuid REFERENCES api_tokens(id) ON DELETE SET NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX maps_account ON maps (account_id, updated_at DESC);
CREATE INDEX maps_token ON maps (token_id);

-- One-time password reset tokens, stored hashed like sessions and invitations.
CREATE TABLE password_resets (
    token_hash  bytea PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX password_resets_user ON password_resets (user_id);
