// Class breaks for a layer's colour and size channels, computed by the server over all rows of the
// source (the Stats API: min/max/quantiles/categories; the histogram model for natural breaks), never
// from the tiles on screen. Input that does not fit the data throws a ClassError with a message the
// style editor shows next to the setting; the layer keeps its settings and draws in one colour.
import { request } from './http.js';
import { model } from './models.js';
import { colorChannels, channelKind, toTime, MIN_CLASSES, MAX_CLASSES, METHODS } from './style.js';
import { isDynamic } from './aggregation.js';

export class ClassError extends Error {}

/** GET the Stats API for one column of a dataset (table path or ?q= for queries). */
export function columnStats(dataset, column, { token } = {}) {
  const conn = encodeURIComponent(dataset.connectionName);
  if (dataset.type === 'query') {
    return request('GET', `/api/v3/stats/${conn}/${encodeURIComponent(column)}`, { token,
      params: { q: dataset.source, queryParameters: dataset.queryParameters || undefined } });
  }
  return request('GET', `/api/v3/stats/${conn}/${encodeURIComponent(dataset.source)}/${encodeURIComponent(column)}`, { token });
}

/** {color, strokeColor, size, labelError}: every channel's classes, errors per channel as {error}. */
export async function layerClasses(layer, dataset, schema, { token, tilejson } = {}) {
  if (isDynamic(dataset)) return cellClasses(layer, tilejson);
  const out = {};
  const names = new Set((schema || []).map(c => c.name));
  const known = name => !schema || !schema.length || names.has(name);
  await Promise.all(colorChannels(layer).map(async ch => {
    try {
      if (!known(ch.field.name)) throw new ClassError(`There is no column “${ch.field.name}” in this layer’s data`);
      out[ch.key] = await channelClasses(ch, dataset, { token });
    } catch (err) { out[ch.key] = { error: err.message }; }
  }));
  const sf = layer.visualChannels && layer.visualChannels.sizeField;
  if (sf && sf.name) {
    try {
      if (!known(sf.name)) throw new ClassError(`There is no column “${sf.name}” in this layer’s data`);
      const s = await columnStats(dataset, sf.name, { token });
      if (s.type !== 'Number') throw new ClassError(`Size needs a numeric column; “${sf.name}” is not numeric`);
      out.size = { min: Number(s.min), max: Number(s.max) };
    } catch (err) { out.size = { error: err.message }; }
  }
  const tl = (layer.config.textLabel || [])[0];
  if (tl && tl.field && tl.field.name && !known(tl.field.name)) out.labelError = `There is no column “${tl.field.name}” to label with`;
  return out;
}

async function channelClasses(ch, dataset, { token }) {
  const kind = channelKind(ch);
  const s = await columnStats(dataset, ch.field.name, { token });
  if (kind === 'category') {
    const cats = (s.categories || []).map(c => c.category);
    return { kind, categories: cats.slice(0, 10), total: cats.length };
  }
  const n = ch.classes;
  if (!Number.isInteger(n) || n < MIN_CLASSES || n > MAX_CLASSES) throw new ClassError(`Choose between ${MIN_CLASSES} and ${MAX_CLASSES} classes`);
  if (kind === 'time') {
    const min = toTime(s.min), max = toTime(s.max);
    if (!Number.isFinite(min) || !Number.isFinite(max)) throw new ClassError(`“${ch.field.name}” has no dates to classify`);
    if (!(max > min)) throw new ClassError(`Every row has the same date: colour by date needs at least two`);
    return { kind, breaks: equalBreaks(min, max, n) };
  }
  if (s.type !== 'Number') throw new ClassError(`“${ch.field.name}” is not numeric: colour it by category instead`);
  const min = Number(s.min), max = Number(s.max);
  if (s.min === null || !Number.isFinite(min)) throw new ClassError(`“${ch.field.name}” has no values to classify`);
  let breaks;
  const method = ch.scale in METHODS ? ch.scale : 'quantile';
  if (method === 'quantize') {
    if (!(max > min)) throw new ClassError(`Every value is ${min}: there is nothing to split into classes`);
    breaks = equalBreaks(min, max, n);
  } else if (method === 'quantile') {
    const q = (s.quantiles && s.quantiles[n]) || [];
    if (q.length !== n + 1) throw new ClassError(`Quantiles are available for up to ${(s.quantiles || []).length - 1} classes`);
    breaks = q.map(Number);
    const distinct = new Set(breaks).size;
    if (distinct < breaks.length) {
      throw new ClassError(`${n} quantile classes do not fit this data: several classes would share the same break (${distinct - 1} distinct classes at most). Choose fewer classes or another method.`);
    }
  } else if (method === 'jenks') {
    if (!(max > min)) throw new ClassError(`Every value is ${min}: there is nothing to split into classes`);
    breaks = await jenksFromServer(dataset, ch.field.name, min, max, n, { token });
  } else {
    breaks = checkCustomBreaks(ch.customBreaks, min, max, n);
  }
  return { kind, breaks };
}

export function equalBreaks(min, max, n) {
  return Array.from({ length: n + 1 }, (_, i) => (i === n ? max : min + ((max - min) * i) / n));
}

/** Custom breaks are the n-1 inner limits, ascending, strictly inside the data's range. */
export function checkCustomBreaks(list, min, max, n) {
  const inner = (list || []).map(Number);
  if (inner.length !== n - 1) throw new ClassError(`${n} classes need ${n - 1} custom breaks; ${inner.length} given`);
  if (inner.some(x => !Number.isFinite(x))) throw new ClassError('Custom breaks must be numbers');
  for (let i = 1; i < inner.length; i++) if (!(inner[i] > inner[i - 1])) throw new ClassError('Custom breaks must go up: each larger than the one before');
  if (inner.length && (inner[0] <= min || inner[inner.length - 1] >= max)) {
    throw new ClassError(`Custom breaks must lie between the data’s minimum ${min} and maximum ${max}`);
  }
  return [min, ...inner, max];
}

/** Natural breaks over all rows: the server's 100-bin histogram, then Jenks on the weighted bins. */
async function jenksFromServer(dataset, column, min, max, n, { token }) {
  const bins = 100, step = (max - min) / bins;
  const ticks = Array.from({ length: bins - 1 }, (_, i) => min + step * (i + 1));
  const r = await model(dataset, 'histogram', { column, operation: 'count', ticks }, { token, filters: {} });
  const counts = Array(bins).fill(0);
  for (const row of r.rows || []) if (row.tick >= 0 && row.tick < bins) counts[row.tick] = Number(row.value) || 0;
  const used = counts.map((c, i) => ({ c, i })).filter(x => x.c > 0);
  if (used.length < n) throw new ClassError(`The data has too few distinct values for ${n} natural-breaks classes; choose at most ${Math.max(used.length, 1)}`);
  const cuts = jenks(used.map(x => min + step * (x.i + 0.5)), used.map(x => x.c), n);
  // A class starts at the lower edge of its first bin, so every row of a bin lands in one class.
  return [min, ...cuts.map(k => min + step * used[k].i), max];
}

/** Fisher–Jenks on weighted values (sorted): the start index of classes 2..n. */
export function jenks(values, weights, n) {
  const m = values.length;
  const cost = (a, b, S) => {
    const w = S.w[b + 1] - S.w[a], s = S.s[b + 1] - S.s[a], q = S.q[b + 1] - S.q[a];
    return w > 0 ? q - (s * s) / w : 0;
  };
  const S = { w: [0], s: [0], q: [0] };
  for (let i = 0; i < m; i++) {
    S.w.push(S.w[i] + weights[i]); S.s.push(S.s[i] + weights[i] * values[i]); S.q.push(S.q[i] + weights[i] * values[i] * values[i]);
  }
  const D = Array.from({ length: n + 1 }, () => Array(m).fill(Infinity));
  const B = Array.from({ length: n + 1 }, () => Array(m).fill(0));
  for (let j = 0; j < m; j++) D[1][j] = cost(0, j, S);
  for (let k = 2; k <= n; k++) {
    for (let j = k - 1; j < m; j++) {
      for (let i = k - 1; i <= j; i++) {
        const d = D[k - 1][i - 1] + cost(i, j, S);
        if (d < D[k][j]) { D[k][j] = d; B[k][j] = i; }
      }
    }
  }
  const starts = [];
  let j = m - 1;
  for (let k = n; k >= 2; k--) { const i = B[k][j]; starts.unshift(i); j = i - 1; }
  return starts;
}

/**
 * A dynamically aggregated grid has no rows to classify: its values exist per zoom. Its classes are
 * equal intervals over the domain the server reports in TileJSON tilestats (all cells at the
 * source's centre zoom), the same domain CARTO's clients colour aggregated layers with.
 */
function cellClasses(layer, tilejson) {
  const out = {};
  const attrs = new Map(((tilejson && tilejson.tilestats && tilejson.tilestats.layers && tilejson.tilestats.layers[0] && tilejson.tilestats.layers[0].attributes) || [])
    .map(a => [a.attribute, a]));
  for (const ch of colorChannels(layer)) {
    const a = attrs.get(ch.field.name);
    try {
      if (!a || a.type !== 'Number') throw new ClassError(`The grid has no numeric value “${ch.field.name}”`);
      if ((ch.scale || 'quantize') !== 'quantize') throw new ClassError('A dynamic grid changes with the zoom: colour it with equal intervals');
      if (!Number.isInteger(ch.classes) || ch.classes < MIN_CLASSES || ch.classes > MAX_CLASSES) throw new ClassError(`Choose between ${MIN_CLASSES} and ${MAX_CLASSES} classes`);
      const min = Number(a.min), max = Number(a.max);
      out[ch.key] = { kind: 'number', breaks: max > min ? equalBreaks(min, max, ch.classes) : [min, min + 1] };
    } catch (err) { out[ch.key] = { error: err.message }; }
  }
  return out;
}
