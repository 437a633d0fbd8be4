// Widgets (formula, category, histogram, time series) of a map: each reads the SQL API model of its
// dataset inside the current viewport, with every filter but its own; clicking a category, bar or
// step filters the dataset, which re-handshakes its layers with the Maps API `filters` param.
import { h, clear, fmt } from './dom.js';
import { model, filtersExcept } from './models.js';
import { fmtNum } from './style.js';

export const WIDGET_TYPES = { formula: 'Formula', category: 'Category', histogram: 'Histogram', timeseries: 'Time series' };
export const OPERATIONS = ['count', 'sum', 'avg', 'min', 'max'];

export class WidgetPanel {
  /**
   * opts: {el, view (MapView), state () → {layers, datasets, widgets}, token, editable, onRemove(widget)}
   */
  constructor(opts) {
    Object.assign(this, opts);
    this.cards = new Map();
    this.seq = 0;
    let timer = null;
    this.onMove = () => { clearTimeout(timer); timer = setTimeout(() => this.refresh(), 250); };
    this.view.map.on('moveend', this.onMove);
  }

  destroy() { this.view.map.off('moveend', this.onMove); }

  render() {
    const { widgets } = this.state();
    clear(this.el, widgets.length ? widgets.map(w => this._card(w)) : h('div.empty', h('h3', 'No widgets'),
      h('p', this.editable ? 'Add a widget to summarise a layer’s data in the current view; clicking it filters the map.' : 'This map has no widgets.')));
    this.refresh();
  }

  _card(w) {
    const body = h('div.widget-body', { 'aria-live': 'polite' }, h('p.muted', 'Loading…'));
    const card = h('section.widget', { dataset: { widget: w.id, type: w.type }, 'aria-label': w.title },
      h('h3', h('span', w.title || WIDGET_TYPES[w.type]),
        h('span', this._hasFilter(w) ? h('button.link.clear-filter', { type: 'button', onclick: () => this.setFilter(w, null) }, 'Clear') : null,
          this.onRemove ? h('button.icon', { type: 'button', 'aria-label': `Remove widget ${w.title}`, onclick: () => this.onRemove(w) }, '✕') : null)),
      h('div.muted', { style: { fontSize: '.8rem' } }, `${w.operation || 'count'}${w.column ? ' · ' + w.column : ''}`), body);
    this.cards.set(w.id, { card, body });
    return card;
  }

  _dataset(w) { return this.state().datasets.find(d => d.id === w.dataId); }
  _hasFilter(w) {
    const f = this.view.filters[w.dataId] || {};
    return Object.values(f).some(ops => Object.values(ops).some(o => o.owner === w.id));
  }

  /** Sets (or clears, with null) one widget's filter on its dataset and re-filters layers and widgets. */
  async setFilter(w, op) {
    const all = JSON.parse(JSON.stringify(this.view.filters[w.dataId] || {}));
    const mine = filtersExcept(all, w.id);
    if (op) mine[w.column] = { ...(mine[w.column] || {}), ...op };
    const { layers, datasets } = this.state();
    await this.view.setFilters(w.dataId, mine, layers, datasets);
    this.render();
  }

  async refresh() {
    const { widgets } = this.state();
    const seq = ++this.seq;
    await Promise.all(widgets.map(async w => {
      const slot = this.cards.get(w.id);
      const dataset = this._dataset(w);
      if (!slot || !dataset) return;
      try {
        const content = await this._load(w, dataset);
        if (seq === this.seq) clear(slot.body, content);
      } catch (err) {
        if (seq === this.seq) clear(slot.body, h('p.form-error', err.message));
      }
    }));
  }

  async _load(w, dataset) {
    const opts = { token: this.token, bounds: this.view.map.getBounds(), filters: filtersExcept(this.view.filters[w.dataId], w.id) };
    const op = w.operation || 'count';
    const active = (this.view.filters[w.dataId] || {})[w.column] || {};
    if (w.type === 'formula') {
      const r = await model(dataset, 'formula', { column: op === 'count' ? '*' : w.column, operation: op }, { ...opts, filters: this.view.filters[w.dataId] || {} });
      const v = r.rows && r.rows[0] ? r.rows[0].value : null;
      return h('div.big.formula-value', v == null ? '—' : fmt(Number(v)));
    }
    if (w.type === 'category') {
      const r = await model(dataset, 'category', { column: w.column, operation: op, operationColumn: w.operationColumn || w.column, orderBy: 'frequency_desc' }, opts);
      const rows = (r.rows || []).slice(0, 12);
      if (!rows.length) return h('p.muted', 'No data in this view.');
      const max = Math.max(...rows.map(x => Number(x.value) || 0), 1);
      const selected = new Set(((active.in && active.in.owner === w.id && active.in.values) || []).map(String));
      return h('div.cats', { role: 'group', 'aria-label': w.title }, rows.map(x => h(`button.cat${selected.size && !selected.has(String(x.name)) ? '.dimmed' : ''}`, {
        type: 'button', 'aria-pressed': selected.has(String(x.name)) ? 'true' : 'false', dataset: { category: String(x.name) },
        onclick: () => {
          const next = new Set(selected);
          if (next.has(String(x.name))) next.delete(String(x.name)); else next.add(String(x.name));
          const values = rows.map(r => r.name).filter(n => next.has(String(n)));
          this.setFilter(w, values.length ? { in: { values, owner: w.id } } : null);
        } },
        h('span', x.name === null ? 'null' : String(x.name)), h('strong', fmtNum(Number(x.value))),
        h('span.bar', h('span', { style: { width: `${(100 * (Number(x.value) || 0)) / max}%`, background: (!(selected.size && !selected.has(String(x.name))) && this.view.colorFor(w.dataId, w.column, x.name)) || '' } })))));
    }
    if (w.type === 'histogram') {
      const range = await model(dataset, 'range', { column: w.column }, { ...opts, bounds: null, filters: {} });
      const min = Number(range.rows[0].min), max = Number(range.rows[0].max);
      if (!Number.isFinite(min) || !Number.isFinite(max)) return h('p.muted', 'No numbers to show.');
      const n = 10, step = (max - min) / n || 1;
      const ticks = Array.from({ length: n - 1 }, (_, i) => min + step * (i + 1));
      const r = await model(dataset, 'histogram', { column: w.column, operation: op, ticks }, opts);
      const values = Array(n).fill(0);
      for (const row of r.rows || []) if (row.tick >= 0 && row.tick < n) values[row.tick] = Number(row.value) || 0;
      const top = Math.max(...values, 1);
      const sel = active.between && active.between.owner === w.id ? active.between.values[0] : null;
      return h('div', h('div.bars', values.map((v, i) => {
        const lo = min + i * step, hi = i === n - 1 ? max : min + (i + 1) * step;
        const on = sel && sel[0] === lo;
        return h(`button${sel && !on ? '.dimmed' : ''}`, { type: 'button', style: { height: `${Math.max(2, (100 * v) / top)}%` },
          title: `${fmtNum(lo)} – ${fmtNum(hi)}: ${fmtNum(v)}`, 'aria-label': `${fmtNum(lo)} to ${fmtNum(hi)}: ${fmtNum(v)}`, 'aria-pressed': on ? 'true' : 'false',
          onclick: () => this.setFilter(w, on ? null : { between: { values: [[lo, hi]], owner: w.id } }) });
      })), h('div.row', { style: { justifyContent: 'space-between', fontSize: '.78rem' } }, h('span.muted', fmtNum(min)), h('span.muted', fmtNum(max))));
    }
    if (w.type === 'timeseries') {
      const r = await model(dataset, 'timeseries', { column: w.column, stepSize: w.stepSize || 'month', operation: op, operationColumn: w.operationColumn || w.column }, opts);
      const rows = r.rows || [];
      if (!rows.length) return h('p.muted', 'No data in this view.');
      const top = Math.max(...rows.map(x => Number(x.value) || 0), 1);
      const sel = active.time && active.time.owner === w.id ? active.time.values[0] : null;
      return h('div', h('div.bars', rows.map((x, i) => {
        const t0 = Number(x.name), t1 = rows[i + 1] ? Number(rows[i + 1].name) : t0 + 86400000 * 31;
        const on = sel && sel[0] === t0;
        const label = new Date(t0).toISOString().slice(0, 10);
        return h(`button${sel && !on ? '.dimmed' : ''}`, { type: 'button', style: { height: `${Math.max(2, (100 * Number(x.value)) / top)}%` },
          title: `${label}: ${fmtNum(Number(x.value))}`, 'aria-label': `${label}: ${fmtNum(Number(x.value))}`, 'aria-pressed': on ? 'true' : 'false',
          onclick: () => this.setFilter(w, on ? null : { time: { values: [[t0, t1]], owner: w.id } }) });
      })), h('div.row', { style: { justifyContent: 'space-between', fontSize: '.78rem' } },
        h('span.muted', new Date(Number(rows[0].name)).toISOString().slice(0, 10)), h('span.muted', new Date(Number(rows[rows.length - 1].name)).toISOString().slice(0, 10))));
    }
    return h('p.muted', 'Unknown widget type');
  }
}
