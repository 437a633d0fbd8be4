// The public map viewer at /map/{id}: fetchMap's sequence (contract §6) with no cookies — the public
// map document, then each dataset's handshake and tiles with the map's own token.
import { request } from './http.js';
import { h, clear, spinner, empty } from './dom.js';
import { MapView } from './mapview.js';
import { WidgetPanel } from './widgets.js';

const root = document.getElementById('viewer');

async function main() {
  const id = decodeURIComponent(location.pathname.split('/').filter(Boolean)[1] || '');
  clear(root, spinner('Loading map…'));
  let map;
  try {
    map = await request('GET', `/api/v3/maps/public/${encodeURIComponent(id)}`, { anonymous: true, params: { v: '3.4', client: 'tessera-www' } });
  } catch (err) {
    clear(root, h('main.auth', h('div.auth-card', empty(err.status === 404 || err.status === 403 ? 'This map is not available' : 'The map could not load',
      err.status === 404 || err.status === 403 ? 'It may be private, or its link may have changed. Ask its owner for a new link.' : err.message,
      h('a.button.secondary', { href: '/' }, 'Go to Tessera')))));
    return;
  }
  const cfg = (map.keplerMapConfig && map.keplerMapConfig.config) || {};
  const layers = (cfg.visState && cfg.visState.layers) || [];
  const widgets = cfg.widgets || [];
  const datasets = map.datasets || [];
  const mapEl = h('div#public-map');
  const widgetEl = h('aside.panel.right#public-widgets', { 'aria-label': 'Widgets' });
  clear(root, h('div.viewer',
    h('header.viewer-bar', h('span.mark', { 'aria-hidden': 'true' }, h('span'), h('span'), h('span'), h('span')),
      h('div', h('h1#public-title', { style: { fontSize: '1.1rem', margin: 0 } }, map.title || 'Map'), map.description ? h('p.muted', { style: { margin: 0 } }, map.description) : null)),
    h(`div.viewer-body${widgets.length ? '' : '.no-widgets'}`, h('main', { style: { position: 'relative', minHeight: '300px' } }, mapEl), widgets.length ? widgetEl : null)));
  document.title = `${map.title || 'Map'} — Tessera`;
  const ms = cfg.mapState || {};
  const view = new MapView(mapEl, { token: map.token, center: [ms.latitude ?? 20, ms.longitude ?? 0], zoom: ms.zoom ?? 2 });
  view.tooltipFields = (cfg.visState && cfg.visState.interactionConfig && cfg.visState.interactionConfig.tooltip
    && cfg.visState.interactionConfig.tooltip.config && cfg.visState.interactionConfig.tooltip.config.fieldsToShow) || {};
  try { await view.setLayers(layers, datasets); view.fitLayers(); } catch (err) { mapEl.append(h('p.form-error', { role: 'alert' }, err.message)); }
  if (widgets.length) new WidgetPanel({ el: widgetEl, view, token: map.token, state: () => ({ layers, datasets, widgets }) }).render();
}

main();
