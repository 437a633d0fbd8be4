// Settings (admins): the organisation's name, its users and their roles, and invitations.
import { api } from '../http.js';
import { h, clear, field, showError, clearErrors, table, empty, spinner, toast, confirmDialog, copyText, busy, when } from '../dom.js';

const ROLES = ['admin', 'editor', 'viewer'];

export async function render(main, ctx) {
  if (!ctx.isAdmin) { main.append(h('div.card', empty('Admins only', 'Ask an administrator to change organisation settings.'))); return; }
  const users = h('div', spinner()), invites = h('div', spinner());
  const orgName = field('Organisation name', { value: ctx.account.name || '' });
  const orgSave = h('button.primary', { type: 'submit' }, 'Save');
  const orgForm = h('form.card', { 'aria-label': 'Organisation' }, h('h2', 'Organisation'), h('div.row', orgName, h('div.field.field-action', orgSave)));
  orgForm.addEventListener('submit', e => {
    e.preventDefault();
    clearErrors({ name: orgName });
    busy(orgSave, async () => {
      try { const r = await api.patch('/api/v3/account', { name: orgName.input.value.trim() }); ctx.account.name = r.name; toast('Organisation renamed'); }
      catch (err) { showError(err, { name: orgName }); }
    }, 'Saving…');
  });

  const email = field('Email', { type: 'email', autocomplete: 'off', placeholder: 'colleague@example.org' });
  const role = field('Role', { tag: 'select', options: [{ value: 'editor', label: 'Editor — builds maps, imports' }, { value: 'viewer', label: 'Viewer — reads only' }, { value: 'admin', label: 'Admin — everything' }] });
  const inviteBtn = h('button.primary#invite-send', { type: 'submit' }, 'Invite');
  const inviteOut = h('div', { 'aria-live': 'polite' });
  const inviteForm = h('form', { 'aria-label': 'Invite someone' }, h('div.row', email, role, h('div.field.field-action', inviteBtn)), inviteOut);
  inviteForm.addEventListener('submit', e => {
    e.preventDefault();
    clearErrors({ email });
    if (!email.input.value.trim()) { showError(new Error('Enter an email address'), { email }); return; }
    busy(inviteBtn, async () => {
      try {
        const r = await api.post('/api/v3/invitations', { email: email.input.value.trim(), role: role.input.value });
        clear(inviteOut, h('div.notice', h('p', `Invitation for ${r.email} created. Send them this link (it works once):`),
          h('div.secret', h('input#invite-link', { value: r.link, readonly: true, 'aria-label': 'Invitation link' }),
            h('button.secondary', { type: 'button', onclick: () => copyText(r.link) }, 'Copy link'))));
        email.input.value = '';
        refresh();
      } catch (err) { showError(err, { email }); }
    }, 'Inviting…');
  });

  main.append(h('div.page-head', h('div', h('h1', 'Settings'), h('p', 'Your organisation, its people and what they may do.'))),
    orgForm,
    h('section.card', h('h2', 'Users'), users),
    h('section.card', h('h2', 'Invitations'), inviteForm, invites));

  async function refresh() {
    try {
      const list = (await api.get('/api/v3/users')).results || [];
      clear(users, table([
        { label: 'Email', render: u => h('span', u.email, u.id === ctx.user.id ? h('span.muted', ' (you)') : null) },
        { label: 'Role', render: u => h('select', { 'aria-label': `Role of ${u.email}`, disabled: u.id === ctx.user.id || undefined, onchange: async e => {
          try { await api.patch(`/api/v3/users/${u.id}`, { role: e.target.value }); toast(`${u.email} is now ${e.target.value}`); }
          catch (err) { toast(err.message, 'error'); refresh(); }
        } }, ROLES.map(r => h('option', { value: r, selected: r === u.role || undefined }, r))) },
        { label: 'Joined', render: u => when(u.created_at || u.createdAt) },
        { label: '', render: u => u.id === ctx.user.id ? '' : h('button.danger', { onclick: async () => {
          if (!(await confirmDialog(`Remove ${u.email}?`, 'They lose access at once. Their maps stay with the organisation.', 'Remove'))) return;
          try { await api.del(`/api/v3/users/${u.id}`); refresh(); } catch (err) { toast(err.message, 'error'); }
        } }, 'Remove') },
      ], list, { 'aria-label': 'Users' }));
      const inv = ((await api.get('/api/v3/invitations')).results || []).filter(i => !i.accepted);
      clear(invites, inv.length ? table([
        { label: 'Email', key: 'email' }, { label: 'Role', key: 'role' }, { label: 'Expires', render: i => when(i.expires_at) },
        { label: '', render: i => h('button.danger', { onclick: async () => {
          try { await api.del(`/api/v3/invitations/${i.id}`); refresh(); } catch (err) { toast(err.message, 'error'); }
        } }, 'Revoke') },
      ], inv, { 'aria-label': 'Pending invitations' }) : h('p.muted', 'No pending invitations.'));
    } catch (err) { clear(users, h('p.form-error', err.message)); }
  }
  refresh();
}
