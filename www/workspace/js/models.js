// The SQL API's widget models (contract §5): formula, category, histogram, timeseries, range.
import { request } from './http.js';

/**
 * model(dataset, 'category', {column, operation}, {token, filters, bounds}) → {rows, metadata}.
 * bounds: a Leaflet LatLngBounds; becomes a GeoJSON polygon spatial filter on the geo column.
 */
export async function model(dataset, name, params, { token, filters, bounds, signal } = {}) {
  const geo = dataset.geoColumn || 'geom';
  const q = {
    type: dataset.type === 'query' ? 'query' : 'table', client: 'tessera-www', source: dataset.source,
    params, queryParameters: dataset.queryParameters || '', filters: filters || {}, filtersLogicalOperator: 'and',
    spatialDataType: 'geo', spatialDataColumn: geo,
  };
  if (bounds) q.spatialFilters = { [geo]: boundsPolygon(bounds) };
  const path = `/api/v3/sql/${encodeURIComponent(dataset.connectionName)}/model/${name}`;
  const long = JSON.stringify(q).length > 1800;
  return long
    ? request('POST', path, { body: q, token, signal })
    : request('GET', path, { params: q, token, signal });
}

export function boundsPolygon(b) {
  const w = Math.max(-180, b.getWest()), e = Math.min(180, b.getEast());
  const s = Math.max(-85.0511, b.getSouth()), n = Math.min(85.0511, b.getNorth());
  if (e - w >= 360 || w >= e) return { type: 'Polygon', coordinates: [[[-180, s], [180, s], [180, n], [-180, n], [-180, s]]] };
  return { type: 'Polygon', coordinates: [[[w, s], [e, s], [e, n], [w, n], [w, s]]] };
}

/** Filter JSON of a dataset without the entries owned by one widget (a widget never filters itself). */
export function filtersExcept(filters, owner) {
  const out = {};
  for (const [col, ops] of Object.entries(filters || {})) {
    const kept = {};
    for (const [op, f] of Object.entries(ops)) if (f.owner !== owner) kept[op] = f;
    if (Object.keys(kept).length) out[col] = kept;
  }
  return out;
}
