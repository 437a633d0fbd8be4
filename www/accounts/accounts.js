// accounts-www: sign in, sign out, sign up (open or by invitation), accept an invitation and reset a
// password. Hash routes (#/login, #/signup, #/accept?token=, #/forgot, #/reset?token=, #/logout) so
// that links the server prints (invitations, reset links) open the right form.
import { api, setCsrf, ApiError } from '/js/http.js';
import { h, clear, field, showError, clearErrors, fieldError, busy } from '/js/dom.js';

const card = document.getElementById('card');
const MIN_PASSWORD = 12;
let configCache = null;

async function config() {
  if (!configCache) {
    try { configCache = await api.get('/api/v3/workspace/config', { anonymous: true }); }
    catch { configCache = { signup: 'invitation', smtp: false }; }
  }
  return configCache;
}

function route() {
  const [path, query] = (location.hash.slice(1) || '/login').split('?');
  return { path, params: new URLSearchParams(query || '') };
}

/**
 * Where to go after signing in: only a plain path on this site. Browsers drop tabs and newlines from
 * URLs and read `\` as `/`, so `/%09/evil` or `/\evil` would leave the site; the server applies the
 * same rule (SafeRedirect) and answers the path to use, this check is the second line.
 */
function nextPath(n) {
  if (typeof n !== 'string' || !n.startsWith('/') || n.length > 2048) return '/';
  if (/^\/[\/\\]/.test(n) || /[\u0000-\u0020\u007f-\u009f\\\s]/.test(n) || /%(0|1|7f|5c|2f|20)/i.test(n)) return '/';
  if (/^\/acc([\/?#]|$)/.test(n)) return '/';
  try { if (new URL(n, location.origin).origin !== location.origin) return '/'; } catch { return '/'; }
  return n;
}

function brand() {
  return h('a.brand', { href: '/' }, h('span.mark', { 'aria-hidden': 'true' }, h('span'), h('span'), h('span'), h('span')), 'Tessera');
}

function page(title, intro, ...body) {
  clear(card, brand(), h('h1', title), intro ? h('p.muted', intro) : null, ...body);
  document.title = `${title} — Tessera`;
  const first = card.querySelector('input, button.primary');
  if (first) first.focus();
}

function form(fields, submit, onsubmit, extra) {
  const error = h('p.form-error', { role: 'alert', hidden: true });
  const button = h('button.primary', { type: 'submit' }, submit);
  const f = h('form', { novalidate: true }, error, Object.values(fields), extra || null, h('div.actions', button));
  f.addEventListener('submit', async e => {
    e.preventDefault();
    clearErrors(fields, error);
    try { await busy(button, () => onsubmit(error), 'Please wait…'); }
    catch (err) { showError(err, fields, error); }
  });
  return f;
}

function need(fields, names) {
  for (const n of names) {
    if (!fields[n].input.value.trim()) { fieldError(fields[n], 'This field is required'); return false; }
  }
  return true;
}

function passwordsOk(fields) {
  const p = fields.password.input.value;
  if (p.length < MIN_PASSWORD) { fieldError(fields.password, `Use at least ${MIN_PASSWORD} characters`); return false; }
  if (fields.confirm && fields.confirm.input.value !== p) { fieldError(fields.confirm, 'The passwords do not match'); return false; }
  return true;
}

const views = {
  async '/login'({ params }) {
    const fields = {
      email: field('Email', { type: 'email', name: 'email', autocomplete: 'username', required: true }),
      password: field('Password', { type: 'password', name: 'password', autocomplete: 'current-password', required: true }),
    };
    const cfg = await config();
    page('Sign in', 'Welcome back. Sign in to your organisation’s workspace.',
      params.get('signedout') ? h('p.notice', { role: 'status' }, 'You are signed out.') : null,
      form(fields, 'Sign in', async error => {
        if (!need(fields, ['email', 'password'])) return;
        try {
          const r = await api.post('/api/v3/auth/login', { email: fields.email.input.value.trim(), password: fields.password.input.value, next: params.get('next') || '/' });
          setCsrf(r.csrf_token);
          location.assign(nextPath(r.next || '/'));
        } catch (err) {
          if (err instanceof ApiError && (err.status === 401 || err.status === 429)) {
            error.textContent = err.status === 401 ? 'The email or password is not right.' : err.message;
            error.hidden = false;
            fields.password.input.value = '';
            fields.password.input.focus();
          } else throw err;
        }
      }),
      h('div.auth-links',
        h('a', { href: '#/forgot' }, 'Forgot your password?'),
        cfg.signup === 'open' ? h('a', { href: '#/signup' }, 'Create an organisation') : null));
  },

  async '/signup'() {
    const cfg = await config();
    if (cfg.signup !== 'open') {
      page('Sign up by invitation', null,
        h('p', 'This Tessera joins people by invitation. Ask an administrator of your organisation to invite you; the invitation link brings you back here to choose a password.'),
        h('div.auth-links', h('a', { href: '#/login' }, 'Back to sign in')));
      return;
    }
    const fields = {
      email: field('Email', { type: 'email', autocomplete: 'username' }),
      organization: field('Organisation name', { type: 'text', autocomplete: 'organization' }, 'Optional; you can change it later.'),
      password: field('Password', { type: 'password', autocomplete: 'new-password' }, `At least ${MIN_PASSWORD} characters.`),
    };
    page('Create your organisation', 'You will be its administrator and can invite others.',
      form(fields, 'Create account', async () => {
        if (!need(fields, ['email', 'password']) || !passwordsOk(fields)) return;
        const r = await api.post('/api/v3/auth/signup', {
          email: fields.email.input.value.trim(), password: fields.password.input.value, organization: fields.organization.input.value.trim() });
        page('Check in', null, h('p.notice', { role: 'status' }, r.message || 'If this email can be registered, you can now sign in.'),
          h('div.auth-links', h('a', { href: '#/login' }, 'Go to sign in')));
      }),
      h('div.auth-links', h('a', { href: '#/login' }, 'I already have an account')));
  },

  async '/accept'({ params }) {
    const token = params.get('token') || params.get('invitation') || '';
    if (!token) return invalidLink('invitation');
    const fields = {
      password: field('Choose a password', { type: 'password', autocomplete: 'new-password' }, `At least ${MIN_PASSWORD} characters.`),
      confirm: field('Repeat the password', { type: 'password', autocomplete: 'new-password' }),
    };
    page('Join your team', 'Choose a password to accept the invitation.',
      form(fields, 'Accept invitation', async error => {
        if (!need(fields, ['password']) || !passwordsOk(fields)) return;
        const password = fields.password.input.value;
        let r;
        try { r = await api.post('/api/v3/auth/invitations/accept', { token, password }); }
        catch (err) {
          if (err.code === 'invalid_invitation') { error.textContent = err.message; error.hidden = false; return; }
          throw err;
        }
        const email = r.user && r.user.email;
        try {
          const s = await api.post('/api/v3/auth/login', { email, password });
          setCsrf(s.csrf_token);
          location.assign('/');
        } catch {
          location.hash = '#/login';
        }
      }));
  },

  async '/forgot'() {
    const cfg = await config();
    const fields = { email: field('Email', { type: 'email', autocomplete: 'username' }) };
    page('Reset your password', cfg.smtp
      ? 'Enter your email and we will send you a link to choose a new password.'
      : 'Enter your email to request a reset.',
      form(fields, 'Request reset', async () => {
        if (!need(fields, ['email'])) return;
        await api.post('/api/v3/auth/password-reset', { email: fields.email.input.value.trim() });
        page('Reset requested', null,
          h('p.notice', { role: 'status' }, cfg.smtp
            ? 'If an account uses this email, a reset link is on its way. The link works once and expires soon.'
            : 'This server does not send email. Ask an administrator for a reset link (they create one with `tessera password-reset-link`).'),
          h('div.auth-links', h('a', { href: '#/login' }, 'Back to sign in')));
      }),
      cfg.smtp ? null : h('p.hint', 'No email is configured here: an administrator gives you the reset link.'),
      h('div.auth-links', h('a', { href: '#/login' }, 'Back to sign in')));
  },

  async '/reset'({ params }) {
    const token = params.get('token') || '';
    if (!token) return invalidLink('reset');
    const fields = {
      password: field('New password', { type: 'password', autocomplete: 'new-password' }, `At least ${MIN_PASSWORD} characters.`),
      confirm: field('Repeat the new password', { type: 'password', autocomplete: 'new-password' }),
    };
    page('Choose a new password', null,
      form(fields, 'Change password', async error => {
        if (!need(fields, ['password']) || !passwordsOk(fields)) return;
        try { await api.post('/api/v3/auth/password-reset/confirm', { token, password: fields.password.input.value }); }
        catch (err) {
          if (err.code === 'invalid_reset_token') { error.textContent = 'This reset link is invalid, expired or already used. Request a new one.'; error.hidden = false; return; }
          throw err;
        }
        page('Password changed', null, h('p.notice', { role: 'status' }, 'Your password is changed. Sign in with the new one.'),
          h('div.auth-links', h('a', { href: '#/login' }, 'Sign in')));
      }));
  },

  async '/logout'() {
    page('Signing out…', null);
    try {
      const me = await api.get('/api/v3/me');
      setCsrf(me.csrf_token);
      await api.post('/api/v3/auth/logout', {});
    } catch { /* already signed out */ }
    location.replace('#/login?signedout=1');
  },
};

function invalidLink(kind) {
  page('This link is incomplete', null,
    h('p', `The ${kind} link is missing its token. Open the full link you were given, or ask an administrator for a new one.`),
    h('div.auth-links', h('a', { href: '#/login' }, 'Back to sign in')));
}

async function render() {
  const r = route();
  const view = views[r.path] || views['/login'];
  try { await view(r); }
  catch (err) { page('Something went wrong', null, h('p.form-error', { role: 'alert' }, err.message)); }
}

window.addEventListener('hashchange', render);
render();
