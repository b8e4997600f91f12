import { api, items, loadUser, session, signOut } from '../api.js';
import { clear, errorBox, field, h, handleSubmit, timeAgo, toast } from '../dom.js';
import { requireSignIn } from '../components.js';

const SECTIONS = [['profile', 'Profile'], ['preferences', 'Preferences'], ['password', 'Password'],
  ['sessions', 'Sessions'], ['tokens', 'API tokens']];
const KINDS = [['new_video', 'New videos from channels I follow'], ['video_processed', 'My uploads finish processing'],
  ['comment', 'Comments on my videos'], ['reply', 'Replies to my comments'], ['subscriber', 'New subscribers']];

function form(children, onSubmit, label = 'Save') {
  const status = h('div');
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', text: label });
  const el = h('form', { class: 'card-form' }, children, status, h('div', { class: 'row-end' }, submit));
  handleSubmit(el, submit, status, async () => {
    const message = await onSubmit();
    if (message) clear(status, h('p', { class: 'success', role: 'status', text: message }));
  });
  return el;
}

function profile(user) {
  const name = h('input', { type: 'text', value: user.display_name || '', maxlength: '80', required: true });
  const email = h('input', { type: 'email', value: user.email || '' });
  const bio = h('textarea', { rows: '4', maxlength: '2000' });
  bio.value = user.bio || '';
  return form([h('h2', { text: 'Profile' }), h('p', { class: 'muted', text: `Signed in as ${user.username}` }),
    field('Display name', name), field('Email', email), field('About you', bio)], async () => {
    await api('/api/users/me', { method: 'PATCH', body: { display_name: name.value.trim(), bio: bio.value, email: email.value.trim() || null } });
    await loadUser();
    return 'Profile saved.';
  });
}

function preferences(user) {
  const prefs = user.preferences || {};
  const known = ['auto', '2160p', '1440p', '1080p', '720p', '480p', '360p', '240p'];
  const current = prefs.default_quality || 'auto';
  if (!known.includes(current)) known.push(current);
  const quality = h('select', {}, known.map((q) => h('option', { value: q, text: q === 'auto' ? 'Automatic' : q })));
  quality.value = current;
  const autoplay = h('input', { type: 'checkbox', id: 'pref-autoplay', checked: Boolean(prefs.autoplay) });
  const kinds = KINDS.map(([key, label]) => {
    const box = h('input', { type: 'checkbox', id: `pref-${key}`, checked: prefs.notifications?.[key] !== false });
    return [key, box, h('div', { class: 'check' }, box, h('label', { for: box.id, text: label }))];
  });
  return form([h('h2', { text: 'Preferences' }), field('Default quality', quality),
    h('div', { class: 'check' }, autoplay, h('label', { for: 'pref-autoplay', text: 'Start videos automatically' })),
    h('fieldset', {}, h('legend', { text: 'Notify me when' }), kinds.map(([, , el]) => el))], async () => {
    const body = { preferences: { autoplay: autoplay.checked, notifications: Object.fromEntries(kinds.map(([k, box]) => [k, box.checked])) } };
    body.preferences.default_quality = quality.value;
    await api('/api/users/me', { method: 'PATCH', body });
    await loadUser();
    return 'Preferences saved.';
  });
}

function password() {
  const current = h('input', { type: 'password', autocomplete: 'current-password', required: true });
  const next = h('input', { type: 'password', autocomplete: 'new-password', required: true, minlength: '8' });
  return form([h('h2', { text: 'Change password' }), field('Current password', current), field('New password', next, 'Every other session will be signed out.')], async () => {
    await api('/api/users/me/password', { method: 'POST', body: { current_password: current.value, new_password: next.value } });
    current.value = '';
    next.value = '';
    return 'Password changed.';
  }, 'Change password');
}

async function sessionsSection() {
  const list = h('ul', { class: 'rows' });
  const wrap = h('section', { class: 'card-form' }, h('h2', { text: 'Sessions' }), list);
  try {
    for (const s of items(await api('/api/users/me/sessions')).items) {
      const revoke = s.current ? h('span', { class: 'tag', text: 'this browser' }) : h('button', {
        type: 'button', class: 'btn btn-ghost', text: 'Sign out',
        onclick: async () => {
          try { await api(`/api/users/me/sessions/${s.id}`, { method: 'DELETE' }); row.remove(); } catch (err) { toast(err.detail, 'error'); }
        },
      });
      const row = h('li', {}, h('div', {}, h('strong', { text: s.user_agent || 'Unknown client' }),
        h('div', { class: 'muted', text: `${s.ip || ''} · last used ${timeAgo(s.last_used_at || s.created_at)}` })), revoke);
      list.append(row);
    }
  } catch (err) { wrap.append(errorBox(err)); }
  return wrap;
}

async function tokensSection() {
  const list = h('ul', { class: 'rows', id: 'token-list' });
  const shown = h('div');
  const name = h('input', { type: 'text', required: true, maxlength: '80', id: 'token-name' });
  const scopes = ['read', 'upload', 'write'].map((s) => h('input', { type: 'checkbox', id: `scope-${s}`, checked: true, value: s }));
  const row = (t) => {
    const li = h('li', {}, h('div', {}, h('strong', { text: t.name }),
      h('div', { class: 'muted', text: `${(t.scopes || []).join(', ')} · created ${timeAgo(t.created_at)}${t.last_used_at ? ` · used ${timeAgo(t.last_used_at)}` : ''}` })),
    h('button', {
      type: 'button', class: 'btn btn-ghost', text: 'Revoke',
      onclick: async () => {
        try { await api(`/api/users/me/tokens/${t.id}`, { method: 'DELETE' }); li.remove(); } catch (err) { toast(err.detail, 'error'); }
      },
    }));
    return li;
  };
  const create = form([h('h3', { text: 'New token' }), field('Name', name),
    h('fieldset', {}, h('legend', { text: 'Scopes' }), scopes.map((box) => h('div', { class: 'check' }, box, h('label', { for: box.id, text: box.value }))))], async () => {
    const token = await api('/api/users/me/tokens', { method: 'POST', body: { name: name.value.trim(), scopes: scopes.filter((b) => b.checked).map((b) => b.value) } });
    list.prepend(row(token));
    clear(shown, h('div', { class: 'notice' }, h('p', { text: 'Copy this token now: it will not be shown again.' }), h('code', { class: 'secret', id: 'new-token', text: token.token })));
    name.value = '';
    return null;
  }, 'Create token');
  const wrap = h('section', { class: 'card-form' }, h('h2', { text: 'API tokens' }),
    h('p', { class: 'muted', text: 'Tokens let scripts use the API as you: send them as "Authorization: Bearer <token>".' }), shown, create, list);
  try {
    list.append(...items(await api('/api/users/me/tokens')).items.map(row));
  } catch (err) { wrap.append(errorBox(err)); }
  return wrap;
}

export default async function account(main, [section = 'profile'], { navigate }) {
  document.title = 'Account · Reelhouse';
  if (!session.user) return requireSignIn(main, 'manage your account');
  const user = session.user;
  const tabs = h('nav', { class: 'tabs', 'aria-label': 'Account sections' },
    SECTIONS.map(([key, label]) => h('a', { href: `/account/${key}`, text: label, 'aria-current': key === section ? 'page' : null })),
    h('button', { type: 'button', class: 'btn btn-ghost', text: 'Sign out', onclick: async () => { await signOut().catch(() => {}); navigate('/'); } }));
  const builders = { profile: () => profile(user), preferences: () => preferences(user), password, sessions: sessionsSection, tokens: tokensSection };
  const body = await (builders[section] || builders.profile)();
  clear(main, h('div', { class: 'account' }, h('h1', { text: 'Account' }), tabs, body));
}
