// The public map viewer at /map/{id}: fetchMap's sequence (contract §6) with no cookies — the public
// map document, then each dataset's handshake and tiles with the map's own token.
// Embed options come as query parameters (the share dialog writes them): legend=0, widgets=0, lock=1.
// A password-protected map asks for its password, trades it for a short-lived grant (kept in this
// tab's sessionStorage only) and sends that grant with the map request.
import { request } from './http.js';
import { h, clear, spinner, empty } from './dom.js';
import { MapView } from './mapview.js';
import { WidgetPanel } from './widgets.js';
import { applyParameters, renderParameterControls } from './parameters.js';

const root = document.getElementById('viewer');
const options = new URLSearchParams(location.search);
const off = name => options.get(name) === '0' || options.get(name) === 'false';

async function fetchMap(id) {
  const grantKey = `tessera-map-grant:${id}`;
  const grant = sessionStorage.getItem(grantKey) || undefined;
  try {
    return await request('GET', `/api/v3/maps/public/${encodeURIComponent(id)}`, { anonymous: true, params: { v: '3.4', client: 'tessera-www', grant } });
  } catch (err) {
    if (err.status !== 401 || err.code !== 'map_password_required') throw err;
    sessionStorage.removeItem(grantKey);
    sessionStorage.setItem(grantKey, await askPassword(id, grant ? 'Your access expired: enter the password again.' : null));
    return fetchMap(id);
  }
}

/** Resolves with a grant once the right password is entered; wrong and throttled answers are shown. */
function askPassword(id, notice) {
  return new Promise(resolve => {
    const input = h('input#map-password-input', { type: 'password', autocomplete: 'current-password', required: true, autofocus: true });
    const error = h('p.form-error#map-password-error', { role: 'alert', hidden: !notice || undefined }, notice || '');
    const button = h('button.primary#map-password-submit', { type: 'submit' }, 'Open map');
    const form = h('form', { onsubmit: async e => {
      e.preventDefault();
      button.disabled = true;
      try {
        const r = await request('POST', `/api/v3/maps/public/${encodeURIComponent(id)}/access`, { anonymous: true, body: { password: input.value } });
        resolve(r.grant);
      } catch (err) {
        error.textContent = err.status === 429 ? (err.message || 'Too many attempts; wait and try again.')
          : err.status === 401 ? 'Wrong password. Try again.' : err.message;
        error.hidden = false;
        input.select();
      } finally { button.disabled = false; }
    } },
    h('h1', { style: { fontSize: '1.2rem' } }, 'This map is protected'),
    h('p.muted', 'Enter the password its owner gave you.'),
    h('div.field', h('label', { for: 'map-password-input' }, 'Password'), input), error, h('div.actions', button));
    clear(root, h('main.auth', h('div.auth-card#map-password-form', form)));
    input.focus();
  });
}

async function main() {
  const id = decodeURIComponent(location.pathname.split('/').filter(Boolean)[1] || '');
  clear(root, spinner('Loading map…'));
  let map;
  try {
    map = await fetchMap(id);
  } catch (err) {
    clear(root, h('main.auth', h('div.auth-card', empty(err.status === 404 || err.status === 403 ? 'This map is not available' : 'The map could not load',
      err.status === 404 || err.status === 403 ? 'It may be private, or its link may have changed. Ask its owner for a new link.' : err.message,
      h('a.button.secondary', { href: '/' }, 'Go to Tessera')))));
    return;
  }
  const cfg = (map.keplerMapConfig && map.keplerMapConfig.config) || {};
  const layers = (cfg.visState && cfg.visState.layers) || [];
  const widgets = off('widgets') ? [] : (cfg.widgets || []);
  const datasets = map.datasets || [];
  const parameters = cfg.parameters || [];
  const mapEl = h('div#public-map');
  const parameterEl = h('div#public-parameters');
  const widgetList = h('div#public-widget-list');
  const side = widgets.length || parameters.length;
  const widgetEl = h('aside.panel.right#public-widgets', { 'aria-label': 'Widgets' },
    parameters.length ? [h('h2', 'Parameters'), parameterEl] : null, widgetList);
  if (off('legend')) document.body.classList.add('embed-no-legend');
  clear(root, h('div.viewer',
    h('header.viewer-bar', h('span.mark', { 'aria-hidden': 'true' }, h('span'), h('span'), h('span'), h('span')),
      h('div', h('h1#public-title', { style: { fontSize: '1.1rem', margin: 0 } }, map.title || 'Map'), map.description ? h('p.muted', { style: { margin: 0 } }, map.description) : null)),
    h(`div.viewer-body${side ? '' : '.no-widgets'}`, h('main', { style: { position: 'relative', minHeight: '300px' } }, mapEl), side ? widgetEl : null)));
  document.title = `${map.title || 'Map'} — Tessera`;
  const ms = cfg.mapState || {};
  const view = new MapView(mapEl, { token: map.token, center: [ms.latitude ?? 20, ms.longitude ?? 0], zoom: ms.zoom ?? 2, mapStyle: cfg.mapStyle });
  if (options.get('lock') === '1') lock(view.map);
  view.tooltipFields = (cfg.visState && cfg.visState.interactionConfig && cfg.visState.interactionConfig.tooltip
    && cfg.visState.interactionConfig.tooltip.config && cfg.visState.interactionConfig.tooltip.config.fieldsToShow) || {};
  // The author's widget filters are part of the map: the viewer opens with them applied.
  if (cfg.filters && !Array.isArray(cfg.filters)) view.filters = JSON.parse(JSON.stringify(cfg.filters));
  applyParameters(datasets, parameters);
  try { await view.setLayers(layers, datasets); if (options.get('lock') !== '1') view.fitLayers(); } catch (err) { mapEl.append(h('p.form-error', { role: 'alert' }, err.message)); }
  const panel = widgets.length ? new WidgetPanel({ el: widgetList, view, token: map.token, state: () => ({ layers, datasets, widgets }) }) : null;
  if (panel) panel.render();
  renderParameterControls({ el: parameterEl, parameters, onChange: async () => {
    const problem = applyParameters(datasets, parameters);
    if (problem) throw new Error(problem);
    await view.setLayers(layers, datasets);
    if (panel) panel.refresh();
  } });
}

/** Interaction lock for embeds: the view stays where the author saved it (tooltips still work). */
function lock(map) {
  for (const handler of ['dragging', 'touchZoom', 'doubleClickZoom', 'scrollWheelZoom', 'boxZoom', 'keyboard']) {
    if (map[handler]) map[handler].disable();
  }
  if (map.zoomControl) map.removeControl(map.zoomControl);
  document.body.classList.add('embed-locked');
}

main();
