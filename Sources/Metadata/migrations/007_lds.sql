-- Location Data Services: per-organisation providers, quotas and monthly usage.

-- Which provider serves a service for an organisation. No row = the local provider in the warehouse.
-- The key is sealed like connection passwords (AES-256-GCM) and never returned by any API.
CREATE TABLE lds_providers (
    account_id   uuid NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    service      text NOT NULL CHECK (service IN ('geocoding', 'isolines', 'routing')),
    provider     text NOT NULL CHECK (provider IN ('local', 'nominatim', 'osrm', 'valhalla')),
    url          text CHECK (url IS NULL OR url ~ '^https?://'),
    api_key_enc  bytea,
    timeout_ms   integer CHECK (timeout_ms IS NULL OR timeout_ms BETWEEN 100 AND 600000),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, service),
    CHECK (provider = 'local' OR url IS NOT NULL)
);

-- An organisation's own monthly quota; without a row the configured default applies.
CREATE TABLE lds_quotas (
    account_id  uuid NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    service     text NOT NULL CHECK (service IN ('geocoding', 'isolines', 'routing')),
    quota       bigint NOT NULL CHECK (quota >= 0),
    PRIMARY KEY (account_id, service)
);

-- Use per calendar month (UTC). Counted with one INSERT ... ON CONFLICT DO UPDATE ... RETURNING, whose
-- row lock makes concurrent requests queue instead of both passing the limit.
CREATE TABLE lds_usage (
    account_id  uuid NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    service     text NOT NULL CHECK (service IN ('geocoding', 'isolines', 'routing')),
    period      date NOT NULL,
    used        bigint NOT NULL DEFAULT 0 CHECK (used >= 0),
    PRIMARY KEY (account_id, service, period)
);
