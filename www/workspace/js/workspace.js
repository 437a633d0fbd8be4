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
  if (bounds && bounds.length === 4) {
    const span = Math.max(bounds[2] - bounds[0], (bounds[3] - bounds[1]) * 2, 1e-6);
    mapState = { latitude: (bounds[1] + bounds[3]) / 2, longitude: (bounds[0] + bounds[2]) / 2, zoom: Math.max(1, Math.min(12, Math.floor(Math.log2(360 / span)))) };
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

export function newMap(title, datasets, layers, bounds) {
  return api.post('/api/v3/workspace/maps', { title, description: '', datasets, keplerMapConfig: keplerConfig(layers, bounds) });
}
