// SQL parameters as CARTO Builder has them: text, numeric range, date range and category list
// controls bound to `{{name}}` placeholders in a query layer's SQL. The values are never pasted
// into the SQL: each placeholder becomes a positional `$n` (with a cast that gives it its type) and
// the values travel as `queryParameters`, bound by PostgreSQL. A range parameter `p` offers
// `{{p_from}}` and `{{p_to}}`; a category list is an array (`col IN {{p}}` or `col = ANY({{p}})`).
import { h, clear } from './dom.js';

export const PARAMETER_TYPES = { text: 'Text', numeric: 'Numeric range', date: 'Date range', category: 'Category list' };
export const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

/** Placeholders a parameter answers to, with the SQL type of each. */
function slots(p) {
  if (p.type === 'numeric') return [[`${p.name}_from`, 'numeric'], [`${p.name}_to`, 'numeric']];
  if (p.type === 'date') return [[`${p.name}_from`, 'date'], [`${p.name}_to`, 'date']];
  return [[p.name, p.type === 'category' ? 'text[]' : 'text']];
}

/** The text value bound for one placeholder of a parameter. */
function slotValue(p, slot) {
  const v = p.value;
  if (p.type === 'numeric' || p.type === 'date') return String(slot.endsWith('_from') ? v[0] : v[1]);
  if (p.type === 'category') return '{' + (v || []).map(x => '"' + String(x).replace(/["\\]/g, m => '\\' + m) + '"').join(',') + '}';
  return String(v ?? '');
}

/** Why a parameter's value cannot be sent, or null. */
export function valueError(p) {
  if (p.type === 'numeric') {
    const [a, b] = p.value || [];
    if (!isNum(a) || !isNum(b)) return `${p.name}: both ends of the range must be numbers`;
    if (Number(a) > Number(b)) return `${p.name}: the range starts after it ends`;
  } else if (p.type === 'date') {
    const [a, b] = p.value || [];
    if (!isDate(a) || !isDate(b)) return `${p.name}: both ends must be dates (YYYY-MM-DD)`;
    if (a > b) return `${p.name}: the range starts after it ends`;
  } else if (p.type === 'category') {
    if (!Array.isArray(p.value)) return `${p.name}: choose a list of categories`;
  } else if (typeof p.value !== 'string') return `${p.name}: the value must be text`;
  return null;
}
const isNum = x => x !== '' && x !== null && x !== undefined && Number.isFinite(Number(x));
const isDate = x => typeof x === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(x) && !Number.isNaN(Date.parse(x));

/**
 * {{name}} text + parameters → {sql, values, unknown}: the SQL with `$n::type` in place of each
 * placeholder (the same placeholder reuses its number) and the positional values.
 */
export function bindParameters(template, parameters) {
  const bySlot = new Map();
  for (const p of parameters || []) for (const [slot, type] of slots(p)) bySlot.set(slot, { p, type });
  const numbers = new Map(), values = [], unknown = [];
  const number = slot => {
    if (!numbers.has(slot)) { values.push(slotValue(bySlot.get(slot).p, slot)); numbers.set(slot, values.length); }
    return numbers.get(slot);
  };
  const sql = String(template)
    .replace(/\bIN\s*\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/gi, (m, name) => {
      const s = bySlot.get(name);
      if (!s || s.type !== 'text[]') return m;
      return `= ANY($${number(name)}::text[])`;
    })
    .replace(PLACEHOLDER, (m, name) => {
      const s = bySlot.get(name);
      if (!s) { unknown.push(name); return m; }
      return `$${number(name)}::${s.type}`;
    });
  return { sql, values, unknown: [...new Set(unknown)] };
}

export const hasPlaceholders = sql => /\{\{\s*[A-Za-z_][A-Za-z0-9_]*\s*\}\}/.test(String(sql || ''));

/**
 * Re-binds every query dataset written with placeholders (dataset.sqlTemplate) to the parameters'
 * current values. Returns the first problem (bad value, unknown placeholder) or null.
 */
export function applyParameters(datasets, parameters) {
  for (const p of parameters || []) { const e = valueError(p); if (e) return e; }
  for (const d of datasets) {
    if (d.type !== 'query' || !d.sqlTemplate) continue;
    const b = bindParameters(d.sqlTemplate, parameters);
    if (b.unknown.length) return `No parameter named ${b.unknown.join(', ')}: add it under SQL parameters`;
    d.source = b.sql;
    d.queryParameters = b.values.length ? b.values : null;
  }
  return null;
}

/**
 * The controls of a map's parameters. opts: {el, parameters, onChange(p) (async; throws to show an
 * error), onRemove(p) (builder only)}. A value that does not fit its type is said next to the
 * control and not sent; the control keeps what was typed.
 */
export function renderParameterControls({ el, parameters, onChange, onRemove }) {
  clear(el, (parameters || []).map(p => control(p, onChange, onRemove)));
}

function control(p, onChange, onRemove) {
  const error = h('p.form-error.parameter-error', { role: 'alert', hidden: true });
  const show = msg => { error.textContent = msg || ''; error.hidden = !msg; };
  const commit = async next => {
    const candidate = { ...p, value: next };
    const bad = valueError(candidate);
    if (bad) { show(bad); return; }
    const previous = p.value;
    p.value = next;
    show(null);
    try { await onChange(p); } catch (err) { p.value = previous; show(err.message); }
  };
  let inputs;
  if (p.type === 'numeric' || p.type === 'date') {
    const type = p.type === 'numeric' ? 'text' : 'date';
    const a = h('input.param-from', { type, value: p.value[0], 'aria-label': `${p.name} from`, inputmode: p.type === 'numeric' ? 'decimal' : undefined });
    const b = h('input.param-to', { type, value: p.value[1], 'aria-label': `${p.name} to`, inputmode: p.type === 'numeric' ? 'decimal' : undefined });
    const go = () => commit([p.type === 'numeric' && isNum(a.value) ? Number(a.value) : a.value.trim(), p.type === 'numeric' && isNum(b.value) ? Number(b.value) : b.value.trim()]);
    a.onchange = go; b.onchange = go;
    inputs = [h('div.param-range', a, h('span.muted', '–'), b)];
    if (p.type === 'numeric' && isNum(p.min) && isNum(p.max)) {
      // A slider for the upper end, the way Builder's numeric control is moved.
      const slider = h('input.param-slider', { type: 'range', min: p.min, max: p.max, step: p.step || 'any', value: p.value[1], 'aria-label': `${p.name} upper end` });
      slider.onchange = () => { b.value = slider.value; go(); };
      inputs.push(slider);
    }
  } else if (p.type === 'category') {
    inputs = [h('div.param-options', (p.options || []).map(o => h('label.check', h('input', { type: 'checkbox', value: o, checked: (p.value || []).includes(o) || undefined,
      onchange: e => {
        const set = new Set(p.value || []);
        if (e.target.checked) set.add(o); else set.delete(o);
        commit((p.options || []).filter(x => set.has(x)));
      } }), o)))];
  } else {
    const t = h('input.param-text', { type: 'text', value: p.value ?? '', 'aria-label': p.name });
    t.onchange = () => commit(t.value);
    inputs = [t];
  }
  return h('div.parameter', { dataset: { parameter: p.name, type: p.type } },
    h('div.parameter-head', h('strong', p.label || p.name),
      onRemove ? h('button.icon', { type: 'button', 'aria-label': `Remove parameter ${p.name}`, onclick: () => onRemove(p) }, '✕') : null),
    h('code.parameter-slots', p.type === 'numeric' || p.type === 'date' ? `{{${p.name}_from}} {{${p.name}_to}}` : `{{${p.name}}}`),
    ...inputs, error);
}
