-- Instantiated Maps API sources. Tile and TileJSON URLs carry only the short id, so long SQL never
-- travels in URLs; the id is a hash of the definition, so instantiating the same source twice is free.
CREATE TABLE map_sources (
    id              text PRIMARY KEY,
    account_id      uuid NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    connection_name text NOT NULL,
    definition      jsonb NOT NULL,
    -- What the handshake learnt: schema, SRID and geometry type.
    metadata        jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_used_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX map_sources_account ON map_sources (account_id, connection_name);
