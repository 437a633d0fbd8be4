// Helpers several sections share: connection names, identifier quoting, and new maps in the
// keplerMapConfig shape.
import { api } from './http.js';

export async function connectionNames() {
  let names = [];
  try { names = ((await api.get('/api/v3/connections')).results || []).map(c => c.name); } catch { /* viewers may not list */ }
  if (!names.includes('carto_dw')) names.unshift('carto_dw');
  return names;
}

/** "schema.table" → "schema"."table" (each part quoted; embedded quotes doubled). */
export function quoteFqn(fqn) {
  const parts = [];
  let cur = '', quoted = false;
  for (let i = 0; i < fqn.length; i++) {
    const ch = fqn[i];
    if (ch === '"') {
      if (quoted && fqn[i + 1] === '"') { cur += '"'; i++; } else quoted = !quoted;
    } else if (ch === '.' && !quoted) { parts.push(cur); cur = ''; } else cur += ch;
  }
  parts.push(cur);
  return parts.map(p => '"' + p.replace(/"/g, '""') + '"').join('.');
}

export function keplerConfig(layers, bounds, extra = {}) {
  let mapState = { latitude: 20, longitude: 0, zoom: 2 };
  if (bounds && bounds.length === 4 && bounds.every(Number.isFinite)) {
    const [w, s, e, n] = bounds;
    const y = lat => Math.log(Math.tan(Math.PI / 4 + (Math.max(-85, Math.min(85, lat)) * Math.PI) / 360));
    mapState = { latitude: (s + n) / 2, longitude: (w + e) / 2, zoom: fitZoom(e - w, (y(n) - y(s)) / (2 * Math.PI)) };
  }
  return {
    version: 'v1',
    config: {
      filters: {}, mapState, mapStyle: { styleType: 'positron', visibleLayerGroups: {} }, popupSettings: {}, legendSettings: {},
      visState: { layers, layerBlending: 'normal', interactionConfig: { tooltip: { enabled: true, config: { fieldsToShow: {} } } } },
      customBaseMaps: {}, widgets: [], ...extra,
    },
  };
}

/** The zoom at which a box (degrees wide, a fraction of the Mercator world high) fits a typical
 * 800×600 map view with a margin. */
function fitZoom(degrees, fraction) {
  const zx = Math.log2((360 / Math.max(degrees, 1e-6)) * (800 / 256));
  const zy = Math.log2(600 / 256 / Math.max(fraction, 1e-9));
  return Math.max(1, Math.min(14, Math.floor(Math.min(zx, zy) - 0.3)));
}

export function newMap(title, datasets, layers, bounds) {
  return api.post('/api/v3/workspace/maps', { title, description: '', datasets, keplerMapConfig: keplerConfig(layers, bounds) });
}

/** The badge text of a map's sharing level (private, organization, public). */
export function privacyLabel(p) {
  return p === 'public' ? 'Public' : p === 'organization' ? 'Organization' : 'Private';
}
