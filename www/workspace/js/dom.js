// Small DOM helpers shared by every screen: element builder, form errors next to their field,
// toasts, confirm dialogs, empty states and tables.

/** h('button.primary', {onclick}, 'Save') — tag with optional .classes and #id; children flattened. */
export function h(spec, attrs, ...children) {
  if (attrs === null || typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs)) {
    children.unshift(attrs);
    attrs = {};
  }
  const m = spec.match(/^([a-z0-9-]+)?((?:[.#][\w-]+)*)$/i);
  const el = document.createElement((m && m[1]) || 'div');
  for (const part of ((m && m[2]) || '').match(/[.#][\w-]+/g) || []) {
    if (part[0] === '.') el.classList.add(part.slice(1)); else el.id = part.slice(1);
  }
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
    else if (k in el && k !== 'list' && k !== 'form' && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el, ...children) { el.replaceChildren(); append(el, children); return el; }

let fieldSeq = 0;
/** A labelled input with a slot for its error; returns the wrapper (wrapper.input is the control). */
export function field(label, attrs = {}, hint) {
  const id = attrs.id || `f${++fieldSeq}`;
  const tag = attrs.tag || 'input';
  delete attrs.tag;
  const input = tag === 'select'
    ? h('select', { id, ...attrs, options: undefined }, (attrs.options || []).map(o => optionEl(o)))
    : h(tag, { id, ...attrs });
  const err = h('p.field-error', { id: `${id}-error`, role: 'alert', hidden: true });
  input.setAttribute('aria-describedby', `${id}-error`);
  const wrap = h('div.field', h('label', { for: id }, label), input, hint ? h('p.hint', hint) : null, err);
  wrap.input = input;
  wrap.error = err;
  return wrap;
}

export function optionEl(o) {
  if (typeof o === 'string') return h('option', { value: o }, o);
  return h('option', { value: o.value, selected: o.selected || undefined }, o.label ?? o.value);
}

/** Shows an API error next to the field it names (by `fields` map of name → wrapper), else in `fallback`. */
export function showError(err, fields = {}, fallback) {
  clearErrors(fields, fallback);
  const msg = err.message || String(err);
  const lower = msg.toLowerCase();
  const target = Object.entries(fields).find(([name]) => lower.includes(name.toLowerCase()));
  if (target) {
    const w = target[1];
    w.error.textContent = msg;
    w.error.hidden = false;
    w.input.setAttribute('aria-invalid', 'true');
    w.input.focus();
  } else if (fallback) {
    fallback.textContent = msg;
    fallback.hidden = false;
  } else {
    toast(msg, 'error');
  }
}

export function fieldError(w, msg) {
  w.error.textContent = msg;
  w.error.hidden = false;
  w.input.setAttribute('aria-invalid', 'true');
  w.input.focus();
}

export function clearErrors(fields = {}, fallback) {
  for (const w of Object.values(fields)) {
    w.error.hidden = true;
    w.error.textContent = '';
    w.input.removeAttribute('aria-invalid');
  }
  if (fallback) { fallback.hidden = true; fallback.textContent = ''; }
}

export function toast(message, kind = 'info') {
  let box = document.querySelector('.toasts');
  if (!box) { box = h('div.toasts', { 'aria-live': 'polite' }); document.body.append(box); }
  const t = h(`div.toast.${kind}`, { role: kind === 'error' ? 'alert' : 'status' }, message);
  box.append(t);
  setTimeout(() => t.remove(), kind === 'error' ? 7000 : 3500);
}

/** A modal dialog; resolves with the value passed to close(), or null when dismissed. */
export function dialog(title, body, actions = []) {
  return new Promise(resolve => {
    const d = h('dialog.modal', { 'aria-labelledby': 'dlg-title' });
    const close = v => { d.close(); d.remove(); resolve(v); };
    d.append(
      h('h2#dlg-title', title),
      h('div.modal-body', typeof body === 'function' ? body(close) : body),
      h('div.actions', actions.map(a => h(`button.${a.kind || 'secondary'}`, { type: 'button', onclick: () => close(a.value) }, a.label))));
    d.addEventListener('cancel', e => { e.preventDefault(); close(null); });
    document.body.append(d);
    d.showModal();
  });
}

export async function confirmDialog(title, text, label = 'Delete') {
  const v = await dialog(title, h('p', text), [
    { label: 'Cancel', value: false }, { label, value: true, kind: 'danger' }]);
  return v === true;
}

export function empty(title, text, action) {
  return h('div.empty', h('div.empty-mark', { 'aria-hidden': 'true' }), h('h3', title), h('p', text), action || null);
}

export function spinner(label = 'Loading…') {
  return h('div.loading', { role: 'status' }, h('span.spin', { 'aria-hidden': 'true' }), label);
}

/** A table: columns [{label, render(row) | key}], rows. */
export function table(columns, rows, attrs = {}) {
  return h('div.table-wrap', h('table', attrs,
    h('thead', h('tr', columns.map(c => h('th', { scope: 'col' }, c.label)))),
    h('tbody', rows.map(r => h('tr', columns.map(c => h('td', c.render ? c.render(r) : fmt(r[c.key]))))))));
}

export function fmt(v) {
  if (v === null || v === undefined) return h('span.null', 'null');
  if (typeof v === 'number') return Number.isInteger(v) ? v.toLocaleString('en') : v.toLocaleString('en', { maximumFractionDigits: 4 });
  if (typeof v === 'object') return JSON.stringify(v).slice(0, 200);
  return String(v).length > 200 ? String(v).slice(0, 200) + '…' : String(v);
}

export function when(ts) {
  if (!ts) return '';
  const d = new Date(ts);
  return isNaN(d) ? String(ts) : d.toLocaleString('en', { dateStyle: 'medium', timeStyle: 'short' });
}

export async function copyText(text) {
  try { await navigator.clipboard.writeText(text); toast('Copied to clipboard'); }
  catch { toast('Copy failed: select the text and copy it by hand', 'error'); }
}

/** Disables a button while `work` runs, with a busy label. */
export async function busy(button, work, label = 'Working…') {
  const old = button.textContent;
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  button.textContent = label;
  try { return await work(); } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
    button.textContent = old;
  }
}
