// Maps: the organisation's maps — list, create, rename, duplicate and delete; open one in the builder.
import { api } from '../http.js';
import { h, clear, empty, spinner, toast, confirmDialog, dialog, field, when } from '../dom.js';
import { keplerConfig, privacyLabel } from '../workspace.js';

export async function render(main, ctx) {
  const list = h('div', spinner());
  main.append(h('div.page-head', h('div', h('h1', 'Maps'), h('p', 'Build maps from your tables and queries, then share them.')),
    ctx.canWrite ? h('button.primary#new-map', { onclick: create }, 'New map') : null), list);

  async function refresh() {
    try {
      const maps = (await api.get('/api/v3/workspace/maps')).data || [];
      if (!maps.length) {
        clear(list, h('div.card', empty('No maps yet', 'Create a map, then add a table or a query as a layer. Or open a table in the data explorer and choose “Create map”.',
          ctx.canWrite ? h('button.primary', { onclick: create }, 'Create your first map') : null)));
        return;
      }
      clear(list, h('div.table-wrap', h('table', { 'aria-label': 'Maps' },
        h('thead', h('tr', ['Title', 'Sharing', 'Owner', 'Updated', ''].map(t => h('th', { scope: 'col' }, t)))),
        h('tbody', maps.map(m => h('tr', { dataset: { map: m.id } },
          h('td', h('a', { href: `#/maps/${m.id}` }, h('strong', m.title || 'Untitled map')), m.description ? h('div.muted', m.description) : null),
          h('td', h(`span.badge${m.privacy === 'public' ? '.public' : ''}`, privacyLabel(m.privacy))),
          h('td', (m.owner && m.owner.email) || ''),
          h('td', when(m.updatedAt)),
          h('td', h('div.row',
            h('a.button.secondary', { href: `#/maps/${m.id}` }, 'Open'),
            ctx.canWrite ? [
              h('button.secondary', { onclick: () => rename(m) }, 'Rename'),
              h('button.secondary', { onclick: () => duplicate(m) }, 'Duplicate'),
              h('button.danger', { onclick: () => remove(m) }, 'Delete')] : null))))))));
    } catch (err) { clear(list, h('p.form-error', { role: 'alert' }, err.message)); }
  }

  async function askTitle(heading, value, label) {
    const f = field('Title', { value, autocomplete: 'off' });
    const v = await dialog(heading, close => {
      const form = h('form', { onsubmit: e => { e.preventDefault(); close('ok'); } }, f);
      setTimeout(() => f.input.select(), 0);
      return form;
    }, [{ label: 'Cancel', value: null }, { label, value: 'ok', kind: 'primary' }]);
    return v === 'ok' ? (f.input.value.trim() || 'Untitled map') : null;
  }

  async function create() {
    const title = await askTitle('New map', 'Untitled map', 'Create');
    if (!title) return;
    try {
      const m = await api.post('/api/v3/workspace/maps', { title, keplerMapConfig: keplerConfig([]), datasets: [] });
      location.hash = `#/maps/${m.id}`;
    } catch (err) { toast(err.message, 'error'); }
  }
  async function rename(m) {
    const title = await askTitle('Rename map', m.title || '', 'Rename');
    if (!title) return;
    try { await api.patch(`/api/v3/workspace/maps/${m.id}`, { title }); toast('Map renamed'); refresh(); } catch (err) { toast(err.message, 'error'); }
  }
  async function duplicate(m) {
    try { await api.post(`/api/v3/workspace/maps/${m.id}/duplicate`, {}); toast('Map duplicated'); refresh(); } catch (err) { toast(err.message, 'error'); }
  }
  async function remove(m) {
    if (!(await confirmDialog(`Delete “${m.title}”?`, 'The map and its public link go away. Your data stays.'))) return;
    try { await api.del(`/api/v3/workspace/maps/${m.id}`); toast('Map deleted'); refresh(); } catch (err) { toast(err.message, 'error'); }
  }
  refresh();
}
