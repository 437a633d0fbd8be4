-- Issue 14 (publishing): a map has a draft (the columns the builder edits) and a published version that
-- the public link, the embed and fetchMap read. published_at NULL means never published: such maps keep
-- serving their current state, so links made before this change and API clients that never publish
-- keep working.
ALTER TABLE maps ADD COLUMN published_title       text;
ALTER TABLE maps ADD COLUMN published_description text;
ALTER TABLE maps ADD COLUMN published_config      jsonb;
ALTER TABLE maps ADD COLUMN published_datasets    jsonb;
ALTER TABLE maps ADD COLUMN published_at          timestamptz;
-- Optional password of a public map (PasswordHasher's format); NULL = no password.
ALTER TABLE maps ADD COLUMN password_hash         text;
