// Connections: the organisation's PostgreSQL warehouses — list, create (with a test first), test, delete.
import { api } from '../http.js';
import { h, clear, field, showError, clearErrors, toast, table, empty, spinner, confirmDialog, busy, when } from '../dom.js';

export async function render(main, ctx) {
  const list = h('div', spinner());
  const formBox = h('div');
  main.append(
    h('div.page-head', h('div', h('h1', 'Connections'), h('p', 'Warehouses your maps, SQL and imports read from. carto_dw is the built-in one.')),
      ctx.canWrite ? h('button.primary', { onclick: () => { showForm(formBox, refresh); } }, 'New connection') : null),
    formBox, list);

  async function refresh() {
    try {
      const r = await api.get('/api/v3/connections');
      const rows = r.results || [];
      clear(list, rows.length ? table([
        { label: 'Name', render: c => h('strong', c.name) },
        { label: 'Host', render: c => `${c.host || 'local'}${c.port ? ':' + c.port : ''}` },
        { label: 'Database', render: c => c.database || '' },
        { label: 'User', render: c => c.user || c.username || '' },
        { label: 'Created', render: c => when(c.created_at || c.createdAt) },
        { label: '', render: c => h('div.row',
          h('button.secondary', { onclick: e => test(e.currentTarget, c) }, 'Test'),
          h('a.button.secondary', { href: `#/explorer/${encodeURIComponent(c.name)}` }, 'Explore'),
          ctx.canWrite ? h('button.danger', { onclick: () => remove(c) }, 'Delete') : null) },
      ], rows, { 'aria-label': 'Connections' }) : h('div.card', empty('No connections yet',
        'Add a PostgreSQL/PostGIS connection to map its tables.',
        ctx.canWrite ? h('button.primary', { onclick: () => showForm(formBox, refresh) }, 'New connection') : null)));
    } catch (err) { clear(list, h('p.form-error', { role: 'alert' }, err.message)); }
  }

  async function test(button, c) {
    await busy(button, async () => {
      try {
        const r = await api.post(`/api/v3/connections/${encodeURIComponent(c.id || c.name)}/test`, {});
        toast(`${c.name}: connected${r.postgis_version ? ' · PostGIS ' + r.postgis_version : ''}`);
      } catch (err) { toast(`${c.name}: ${err.message}`, 'error'); }
    }, 'Testing…');
  }

  async function remove(c) {
    if (!(await confirmDialog(`Delete ${c.name}?`, 'Maps and tokens that use this connection stop working. The warehouse itself is not touched.'))) return;
    try { await api.del(`/api/v3/connections/${encodeURIComponent(c.id || c.name)}`); toast(`${c.name} deleted`); refresh(); }
    catch (err) { toast(err.message, 'error'); }
  }

  refresh();
}

function showForm(box, done) {
  const f = {
    name: field('Name', { autocomplete: 'off', placeholder: 'analytics' }, 'Letters, digits, _ and -. Used in API paths.'),
    host: field('Host', { autocomplete: 'off', placeholder: 'db.example.org' }),
    port: field('Port', { type: 'number', value: '5432', min: 1, max: 65535 }),
    database: field('Database', { autocomplete: 'off' }),
    user: field('User', { autocomplete: 'off' }),
    password: field('Password', { type: 'password', autocomplete: 'new-password' }),
    sslmode: field('SSL mode', { tag: 'select', options: ['prefer', 'require', 'verify-full', 'verify-ca', 'disable', 'allow'] }),
  };
  const error = h('p.form-error', { role: 'alert', hidden: true });
  const status = h('p', { role: 'status' });
  const body = () => ({ name: f.name.input.value.trim(), host: f.host.input.value.trim(), port: Number(f.port.input.value || 5432),
    database: f.database.input.value.trim(), user: f.user.input.value.trim(), password: f.password.input.value, sslmode: f.sslmode.input.value });
  const testBtn = h('button.secondary', { type: 'button' }, 'Test connection');
  const saveBtn = h('button.primary', { type: 'submit' }, 'Save connection');
  testBtn.onclick = () => busy(testBtn, async () => {
    clearErrors(f, error); status.textContent = '';
    try {
      const r = await api.post('/api/v3/connections/test', body());
      status.textContent = `Connected: ${r.server_version || 'PostgreSQL'}${r.postgis_version ? ', PostGIS ' + r.postgis_version : ' (no PostGIS)'}`;
    } catch (err) { showError(err, fieldMap(f), error); }
  }, 'Testing…');
  const form = h('form.card', { 'aria-label': 'New connection' }, h('h2', 'New connection'), error,
    h('div.row', f.name, f.host, f.port), h('div.row', f.database, f.user, f.password, f.sslmode), status,
    h('div.actions', saveBtn, testBtn, h('button.link', { type: 'button', onclick: () => clear(box) }, 'Cancel')));
  form.addEventListener('submit', e => {
    e.preventDefault();
    busy(saveBtn, async () => {
      clearErrors(f, error);
      const b = body();
      for (const k of ['name', 'host', 'database', 'user']) if (!b[k]) { f[k].error.textContent = 'Required'; f[k].error.hidden = false; f[k].input.focus(); return; }
      try { await api.post('/api/v3/connections', b); toast(`Connection ${b.name} saved`); clear(box); done(); }
      catch (err) { showError(err, fieldMap(f), error); }
    }, 'Saving…');
  });
  clear(box, form);
  f.name.input.focus();
}

/** Server messages name fields in their own words; map those to the inputs. */
function fieldMap(f) {
  return { named: f.name, host: f.host, port: f.port, database: f.database, password: f.password, sslmode: f.sslmode, user: f.user, name: f.name };
}
