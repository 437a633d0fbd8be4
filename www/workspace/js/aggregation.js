// Aggregated layers of point tables, styled like any layer by their aggregate (a count, or the
// sum/avg/min/max of a column):
// - grid (quadbin): the Maps API's dynamic aggregation (spatialDataType quadbin over the geometry
//   column, aggregationExp, aggregationResLevel): cells `level` zooms finer than each tile, so they
//   stay the same size on screen at every zoom; tiles are addressed and answered by quadbin id.
// - hexbins (H3): one query the warehouse runs over every row, grouping points into H3 cells of a
//   fixed resolution (carto.h3_* functions) returned as polygons in ordinary vector tiles. The browser
//   has no H3 library to cover a viewport with H3 tiles or to draw cell ids, so H3 cannot use the
//   per-zoom route here.
// - heatmap and clusters: the same dynamic grid, drawn as a smooth heat surface or as circles with counts.
export const AGGREGATIONS = { h3: 'Hexbins (H3)', quadbin: 'Grid (quadbin, per zoom)', heatmap: 'Heatmap (per zoom)', cluster: 'Clusters (per zoom)' };
// [min, max, default]; the grid kinds: levels below the tile
export const RESOLUTIONS = { h3: [1, 10, 4], quadbin: [1, 8, 4], heatmap: [1, 8, 5], cluster: [1, 6, 3] };
/** The kinds on the Maps API's dynamic quadbin aggregation. */
export const ON_GRID = new Set(['quadbin', 'heatmap', 'cluster']);
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

/** The dynamic grid's aggregationExp: `count(*) AS count`, plus `sum("col") AS sum_col` when asked. */
export function aggregationExp(a) {
  const count = 'count(*) AS count';
  if (a.operation === 'count' || !a.column) return count;
  return `${count}, ${a.operation}(${quoteName(a.column)})::float8 AS ${quoteName(aggregateColumn(a))}`;
}
