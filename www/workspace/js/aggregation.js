// Aggregated layers of point tables: the builder writes one query that the warehouse runs over
// every row, grouping points into H3 hexagons or quadbin squares (carto.h3_* / carto.quadbin_*
// functions of the warehouse) with a count and optionally the sum/avg/min/max of a column; the cells
// come back as polygons in ordinary vector tiles and are styled like any layer (by the aggregate).
export const AGGREGATIONS = { h3: 'Hexbins (H3)', quadbin: 'Grid (quadbin)' };
export const RESOLUTIONS = { h3: [1, 10, 4], quadbin: [2, 18, 7] };  // [min, max, default]
export const AGG_OPERATIONS = ['count', 'sum', 'avg', 'min', 'max'];

/** "schema.table" → "schema"."table" (identifiers quoted, quotes doubled). */
export function quoteName(name) {
  return String(name).split('.').map(p => '"' + p.replace(/^"|"$/g, '').replace(/"/g, '""') + '"').join('.');
}

/** The column the layer is coloured by: `count`, or e.g. `sum_population`. */
export function aggregateColumn(a) {
  return a.operation === 'count' || !a.column ? 'count' : `${a.operation}_${a.column}`.toLowerCase().replace(/[^a-z0-9_]/g, '_');
}

/** a: {kind: h3|quadbin, table, geo, resolution, operation, column} → SQL text (no user values in it but names, quoted). */
export function aggregationSQL(a) {
  const [lo, hi] = RESOLUTIONS[a.kind];
  const res = Math.max(lo, Math.min(hi, Math.round(Number(a.resolution))));
  const g = `ST_Transform(${quoteName(a.geo)}, 4326)`;
  const cell = a.kind === 'h3' ? `carto.h3_fromgeogpoint_int(${g}, ${res})` : `carto.quadbin_frompoint(${g}, ${res})`;
  const id = a.kind === 'h3' ? 'carto.h3_int_tostring(cell) AS h3' : "lpad(to_hex(cell), 16, '0') AS quadbin";
  const boundary = a.kind === 'h3' ? 'ST_SetSRID(carto.h3_boundary(cell), 4326)' : 'carto.quadbin_boundary(cell)';
  const op = AGG_OPERATIONS.includes(a.operation) ? a.operation : 'count';
  const value = op === 'count' || !a.column ? '' : `, ${op}(v)::float8 AS ${quoteName(aggregateColumn(a))}`;
  const pick = op === 'count' || !a.column ? '' : `, ${quoteName(a.column)} AS v`;
  return `SELECT ${id}, count(*)::int AS count${value}, ${boundary} AS geom\n`
    + `FROM (SELECT ${cell} AS cell${pick} FROM ${quoteName(a.table)} WHERE ${quoteName(a.geo)} IS NOT NULL) AS _points\n`
    + 'GROUP BY cell';
}
