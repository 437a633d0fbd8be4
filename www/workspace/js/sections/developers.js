// Developers: API access tokens (grants per connection and source, allowed APIs, referers, expiry)
// and OAuth clients (client_credentials) for scripts.
import { api } from '../http.js';
import { h, clear, field, showError, clearErrors, table, empty, spinner, toast, confirmDialog, dialog, copyText, busy, when } from '../dom.js';
import { connectionNames } from '../workspace.js';

export async function render(main, ctx) {
  const tokens = h('div', spinner());
  const clients = h('div', spinner());
  const tokenForm = h('div');
  main.append(h('div.page-head', h('div', h('h1', 'Developers'), h('p', 'Credentials for apps and scripts that use the Maps, SQL and Imports APIs.'))),
    h('section.card', h('div.page-head', h('div', h('h2', 'API access tokens'), h('p', 'Scoped to the sources you grant. Safe to embed in a public web page.')),
      ctx.canWrite ? h('button.primary#new-token', { onclick: () => showTokenForm() }, 'New token') : null), tokenForm, tokens),
    h('section.card', h('div.page-head', h('div', h('h2', 'OAuth clients'), h('p', 'Exchange the client id and secret for a short-lived token (client_credentials) that acts as you.')),
      ctx.canWrite ? h('button.secondary', { onclick: createClient }, 'New OAuth client') : null), clients));

  async function refreshTokens() {
    try {
      const list = (await api.get('/api/v3/tokens')).results || [];
      clear(tokens, list.length ? table([
        { label: 'Grants', render: t => h('div', t.grants.map(g => h('div', h('code', g.connection_name), ' · ', h('code', g.source.length > 60 ? g.source.slice(0, 60) + '…' : g.source)))) },
        { label: 'APIs', render: t => t.allowed_apis.join(', ') },
        { label: 'Referers', render: t => t.referers.join(', ') || 'any' },
        { label: 'Expires', render: t => t.expiration_date ? when(t.expiration_date) : 'never' },
        { label: '', render: t => h('div.row', h('button.secondary', { onclick: () => copyText(t.token) }, 'Copy token'),
          ctx.canWrite ? h('button.danger', { onclick: async () => {
            if (!(await confirmDialog('Delete this token?', 'Apps using it stop working within seconds.'))) return;
            try { await api.del(`/api/v3/tokens/${t.id}`); refreshTokens(); } catch (err) { toast(err.message, 'error'); }
          } }, 'Delete') : null) },
      ], list, { 'aria-label': 'API access tokens' }) : empty('No tokens yet', 'Create a token to use your data from an app or from @carto/api-client.'));
    } catch (err) { clear(tokens, h('p.form-error', err.message)); }
  }

  async function showTokenForm() {
    const names = await connectionNames();
    const f = {
      connection: field('Connection', { tag: 'select', options: names }),
      sources: field('Sources', { tag: 'textarea', rows: 3, placeholder: 'public.my_table\npublic.*' }, 'One per line: a table, schema.*, a SQL query, or * for everything on the connection.'),
      referers: field('Allowed referers', { placeholder: 'https://app.example.org/' }, 'Optional, comma separated.'),
      expiration: field('Expires', { type: 'date' }, 'Optional; cannot be changed later.'),
    };
    const apis = ['maps', 'sql', 'imports', 'lds', 'workflows'].map(a => h('label.check', h('input', { type: 'checkbox', value: a, checked: a === 'maps' || a === 'sql' || undefined }), a));
    const error = h('p.form-error', { role: 'alert', hidden: true });
    const save = h('button.primary', { type: 'submit' }, 'Create token');
    const form = h('form', { 'aria-label': 'New token' }, error, h('div.row', f.connection, f.referers, f.expiration), f.sources,
      h('fieldset', { style: { border: 'none', padding: 0 } }, h('legend', 'Allowed APIs'), h('div.row', apis)),
      h('div.actions', save, h('button.link', { type: 'button', onclick: () => clear(tokenForm) }, 'Cancel')));
    form.addEventListener('submit', e => {
      e.preventDefault();
      clearErrors(f, error);
      const sources = f.sources.input.value.split('\n').map(s => s.trim()).filter(Boolean);
      if (!sources.length) { showError(new Error('Add at least one source'), { source: f.sources }); return; }
      const body = {
        grants: sources.map(source => ({ connection_name: f.connection.input.value, source })),
        allowed_apis: apis.map(l => l.querySelector('input')).filter(i => i.checked).map(i => i.value),
        referers: f.referers.input.value.split(',').map(s => s.trim()).filter(Boolean),
      };
      if (f.expiration.input.value) body.expiration_date = new Date(f.expiration.input.value + 'T23:59:59Z').toISOString();
      busy(save, async () => {
        try {
          const t = await api.post('/api/v3/tokens', body);
          clear(tokenForm, h('div.notice', h('p', 'Token created. Copy it now or later from the list.'), secret(t.token)));
          refreshTokens();
        } catch (err) { showError(err, { expiration: f.expiration, source: f.sources, grant: f.sources, referer: f.referers, connection: f.connection }, error); }
      }, 'Creating…');
    });
    clear(tokenForm, form);
    f.sources.input.focus();
  }

  async function refreshClients() {
    try {
      const list = (await api.get('/api/v3/oauth-clients')).results || [];
      clear(clients, list.length ? table([
        { label: 'Name', render: c => c.name || '—' }, { label: 'Client id', render: c => h('code', c.client_id) },
        { label: 'Created', render: c => when(c.created_at) },
        { label: '', render: c => ctx.canWrite ? h('button.danger', { onclick: async () => {
          if (!(await confirmDialog('Delete this client?', 'Scripts using it can no longer get tokens.'))) return;
          try { await api.del(`/api/v3/oauth-clients/${encodeURIComponent(c.client_id)}`); refreshClients(); } catch (err) { toast(err.message, 'error'); }
        } }, 'Delete') : '' },
      ], list, { 'aria-label': 'OAuth clients' }) : empty('No OAuth clients', 'Create one for a backend script or CI job.'));
    } catch (err) { clear(clients, h('p.form-error', err.message)); }
  }

  async function createClient() {
    const name = field('Name', { placeholder: 'nightly-export' });
    const ok = await dialog('New OAuth client', close => h('form', { onsubmit: e => { e.preventDefault(); close('ok'); } }, name),
      [{ label: 'Cancel', value: null }, { label: 'Create', value: 'ok', kind: 'primary' }]);
    if (ok !== 'ok') return;
    try {
      const c = await api.post('/api/v3/oauth-clients', { name: name.input.value.trim() });
      await dialog('Client created', h('div', h('p', 'The secret is shown only now. Store it safely.'),
        h('p', 'Client id'), secret(c.client_id), h('p', 'Client secret'), secret(c.client_secret)), [{ label: 'Done', value: true, kind: 'primary' }]);
      refreshClients();
    } catch (err) { toast(err.message, 'error'); }
  }

  refreshTokens();
  refreshClients();
}

function secret(value) {
  return h('div.secret', h('input', { value, readonly: true, 'aria-label': 'Secret value', onfocus: e => e.target.select() }),
    h('button.secondary', { type: 'button', onclick: () => copyText(value) }, 'Copy'));
}
