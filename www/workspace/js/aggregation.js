// Aggregated layers of point tables, styled like any layer by their aggregate (a count, or the
// sum/avg/min/max of a column):
// - grid (quadbin): the Maps API's dynamic aggregation (spatialDataType quadbin over the geometry
//   column, aggregationExp, aggregationResLevel): cells `level` zooms finer than each tile, so they
//   stay the same size on screen at every zoom; tiles are addressed and answered by quadbin id.
// - hexbins (H3): the same dynamic aggregation over H3 (spatialDataType h3): tiles are H3 cells of a
//   resolution that follows the zoom (h3.js picks them and draws the hexagons), answered with their
//   descendants `level` resolutions finer, so hexagons keep about the same size on screen at every zoom.
// - heatmap and clusters: the same dynamic grid, drawn as a smooth heat surface or as circles with counts.
export const AGGREGATIONS = { h3: 'Hexbins (H3, per zoom)', quadbin: 'Grid (quadbin, per zoom)', heatmap: 'Heatmap (per zoom)', cluster: 'Clusters (per zoom)' };
// [min, max, default]: resolutions below the tile (an H3 level has 7 times the cells, a quadbin one 4)
export const RESOLUTIONS = { h3: [1, 5, 3], quadbin: [1, 8, 4], heatmap: [1, 8, 5], cluster: [1, 6, 3] };
/** The kinds on the Maps API's dynamic aggregation (all of them now). */
export const ON_GRID = new Set(['h3', 'quadbin', 'heatmap', 'cluster']);
/** The spatial index a kind aggregates into. */
export const indexOf = kind => (kind === 'h3' ? 'h3' : 'quadbin');
/** True for a dataset the Maps API aggregates per tile (its features are cells, not rows). */
export const isDynamic = d => !!d && (d.spatialDataType === 'quadbin' || d.spatialDataType === 'h3');
export const AGG_OPERATIONS = ['count', 'sum', 'avg', 'min', 'max'];

/** "schema.table" → "schema"."table" (identifiers quoted, quotes doubled). */
export function quoteName(name) {
  return String(name).split('.').map(p => '"' + p.replace(/^"|"$/g, '').replace(/"/g, '""') + '"').join('.');
}

/** The column the layer is coloured by: `count`, or e.g. `sum_population`. */
export function aggregateColumn(a) {
  return a.operation === 'count' || !a.column ? 'count' : `${a.operation}_${a.column}`.toLowerCase().replace(/[^a-z0-9_]/g, '_');
}

/** The dynamic grid's aggregationExp: `count(*) AS count`, plus `sum("col") AS sum_col` when asked. */
export function aggregationExp(a) {
  const count = 'count(*) AS count';
  if (a.operation === 'count' || !a.column) return count;
  return `${count}, ${a.operation}(${quoteName(a.column)})::float8 AS ${quoteName(aggregateColumn(a))}`;
}
