// workspace-www: the signed-in single-page app. Hash routes pick a section; the builder takes the
// whole window. Not signed in → accounts-www's login, which brings the user back here.
import { api, setCsrf, ApiError } from './http.js';
import { h, clear, spinner, toast } from './dom.js';

const SECTIONS = [
  { path: 'maps', label: 'Maps', load: () => import('./sections/maps.js') },
  { path: 'connections', label: 'Connections', load: () => import('./sections/connections.js') },
  { path: 'explorer', label: 'Data explorer', load: () => import('./sections/explorer.js') },
  { path: 'sql', label: 'SQL console', load: () => import('./sections/sql.js') },
  { path: 'imports', label: 'Imports', load: () => import('./sections/imports.js') },
  { path: 'workflows', label: 'Workflows', load: () => import('./sections/workflows.js') },
  { path: 'developers', label: 'Developers', load: () => import('./sections/developers.js') },
  { path: 'settings', label: 'Settings', load: () => import('./sections/settings.js'), admin: true },
];

const root = document.getElementById('app');
let ctx = null;
let cleanup = null;

async function boot() {
  clear(root, spinner('Opening your workspace…'));
  try {
    const me = await api.get('/api/v3/me');
    setCsrf(me.csrf_token);
    ctx = { user: me.user, account: me.account, role: me.user.role, canWrite: me.user.role !== 'viewer', isAdmin: me.user.role === 'admin' };
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      location.replace('/acc/#/login?next=' + encodeURIComponent(location.pathname + location.hash));
      return;
    }
    clear(root, h('div.empty', h('h3', 'The workspace cannot reach its API'), h('p', err.message), h('button.primary', { onclick: boot }, 'Try again')));
    return;
  }
  window.addEventListener('hashchange', render);
  render();
}

function parse() {
  const [path, query] = (location.hash.replace(/^#\/?/, '') || 'maps').split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  return { parts, params: new URLSearchParams(query || '') };
}

export function navigate(hash) { location.hash = hash; }

async function render() {
  if (cleanup) { try { cleanup(); } catch { /* ignore */ } cleanup = null; }
  const { parts, params } = parse();
  if (parts[0] === 'maps' && parts[1]) {
    const mod = await import('./sections/builder.js');
    clear(root);
    cleanup = await mod.render(root, ctx, parts[1]);
    return;
  }
  const section = SECTIONS.find(s => s.path === parts[0]) || SECTIONS[0];
  const main = h('main.main#main', { tabindex: '-1' });
  const nav = h('nav.nav', { 'aria-label': 'Workspace' }, SECTIONS.filter(s => !s.admin || ctx.isAdmin).map(s =>
    h('a', { href: `#/${s.path}`, 'aria-current': s === section ? 'page' : undefined }, s.label)));
  clear(root, h('div.shell',
    h('a.skip', { href: '#main', onclick: e => { e.preventDefault(); main.focus(); } }, 'Skip to content'),
    h('aside.sidebar',
      h('a.brand', { href: '#/maps' }, h('span.mark', { 'aria-hidden': 'true' }, h('span'), h('span'), h('span'), h('span')), 'Tessera'),
      nav,
      h('div.me', h('div.who', h('div', ctx.user.email), h('div.muted', `${ctx.account.name || ''} · ${ctx.role}`)),
        h('a.button.link', { href: '/acc/#/logout' }, 'Sign out'))),
    main));
  document.title = `${section.label} — Tessera`;
  main.append(spinner());
  try {
    const mod = await section.load();
    clear(main);
    cleanup = (await mod.render(main, ctx, parts.slice(1), params)) || null;
  } catch (err) {
    clear(main, h('div.empty', { role: 'alert' }, h('h3', 'This page could not load'), h('p', err.message)));
    toast(err.message, 'error');
  }
}

boot();
