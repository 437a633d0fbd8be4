-- Connections the platform itself created (the embedded carto_dw from setup) are exempt from the rule
-- that user connections may not reach this machine (ConnectionPolicy). Existing rows stay false: a
-- connection made before the rule (e.g. carto_dw over the local socket as the metadata role) is refused
-- at use until an operator re-runs setup or points it elsewhere; `tessera migrate` and `tessera status`
-- list them.
ALTER TABLE connections ADD COLUMN platform_managed boolean NOT NULL DEFAULT false;
