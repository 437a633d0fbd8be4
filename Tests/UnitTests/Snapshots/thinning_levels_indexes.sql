-- parameters: []
CREATE INDEX ON carto."tessera_thin_k_1" USING gist ("geom") WHERE __minz <= 0;
CREATE INDEX ON carto."tessera_thin_k_1" USING gist ("geom") WHERE __minz <= 1;
CREATE INDEX ON carto."tessera_thin_k_1" USING gist ("geom") WHERE __minz <= 2;
CREATE INDEX ON carto."tessera_thin_k_1" USING gist ("geom") WHERE __minz <= 3;
CREATE INDEX ON carto."tessera_thin_k_1" USING gist ("geom") WHERE __minz <= 4;
CREATE INDEX ON carto."tessera_thin_k_1" USING gist ("geom") WHERE __minz <= 5;
CREATE INDEX ON carto."tessera_thin_k_1" USING gist ("geom") WHERE __minz <= 6;

