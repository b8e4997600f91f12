// The shell: History-API router, the header (navigation, notification bell, account
// menu) and the live connection's lifecycle.
import { api, items, loadUser, onSession, session } from './api.js';
import { clear, errorBox, h, toast } from './dom.js';
import { live, notificationOf } from './live.js';

const ROUTES = [
  [/^\/$/, 'home'],
  [/^\/watch\/([^/]+)$/, 'watch'],
  [/^\/upload$/, 'upload'],
  [/^\/channel\/([^/]+)$/, 'channel'],
  [/^\/feed$/, 'feed'],
  [/^\/notifications$/, 'notifications'],
  [/^\/signin$/, 'signin'],
  [/^\/signup$/, 'signup'],
  [/^\/account(?:\/([a-z-]+))?$/, 'account'],
  [/^\/admin$/, 'admin'],
];

const main = document.getElementById('main');
let cleanup = null;
let renderCount = 0;

export function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState({}, '', path);
  else history.pushState({}, '', path);
  render();
}

async function render() {
  const count = ++renderCount;
  if (typeof cleanup === 'function') {
    try { cleanup(); } catch (err) { console.error(err); }
  }
  cleanup = null;
  const path = location.pathname;
  const match = ROUTES.map(([re, name]) => [path.match(re), name]).find(([m]) => m);
  for (const link of document.querySelectorAll('[data-nav]')) {
    link.toggleAttribute('aria-current', Boolean(match) && link.dataset.nav === match[1]);
    if (link.hasAttribute('aria-current')) link.setAttribute('aria-current', 'page');
  }
  if (!match) {
    document.title = 'Not found · Reelhouse';
    clear(main, h('h1', { text: 'Page not found' }), h('p', {}, h('a', { href: '/', text: 'Back to the home page' })));
    return;
  }
  const [m, name] = match;
  try {
    const page = await import(`./pages/${name}.js`);
    if (count !== renderCount) return;
    main.dataset.page = name;
    const result = await page.default(main, m.slice(1).map((p) => p && decodeURIComponent(p)), { navigate });
    if (count !== renderCount) {
      if (typeof result === 'function') result();
      return;
    }
    cleanup = result;
  } catch (err) {
    if (count !== renderCount) return;
    console.error(err);
    clear(main, h('h1', { text: 'Something went wrong' }), errorBox(err));
  }
}

// Same-origin links to app pages are handled here instead of reloading the page.
document.addEventListener('click', (event) => {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const link = event.target.closest('a[href]');
  if (!link || link.target || link.hasAttribute('download')) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith('/api/') || url.pathname.startsWith('/static/')) return;
  if (url.pathname === location.pathname && url.hash) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
  main.focus({ preventScroll: true });
  window.scrollTo(0, 0);
});
window.addEventListener('popstate', render);

// --- header: bell and account menu --------------------------------------------------

const bell = { count: 0, badge: null, link: null };

function setUnread(count) {
  bell.count = Math.max(0, Number(count) || 0);
  if (!bell.badge) return;
  bell.badge.textContent = bell.count > 99 ? '99+' : String(bell.count);
  bell.badge.hidden = bell.count === 0;
  bell.link.setAttribute('aria-label', `Notifications, ${bell.count} unread`);
  document.dispatchEvent(new CustomEvent('rh:unread', { detail: bell.count }));
}

let countTimer = null;
function refreshUnread() {
  clearTimeout(countTimer);
  countTimer = setTimeout(async () => {
    if (!session.user) return;
    try {
      const page = await api('/api/notifications?limit=1');
      if (page && typeof page.unread_count === 'number') setUnread(page.unread_count);
    } catch { /* the bell keeps its last count */ }
  }, 150);
}

document.addEventListener('rh:refresh-unread', () => refreshUnread());

let closeMenu = () => {};
document.addEventListener('click', (e) => {
  if (!document.getElementById('userarea').contains(e.target)) closeMenu();
});

function renderUserArea(user) {
  const area = document.getElementById('userarea');
  if (!user) {
    bell.badge = null;
    clear(area,
      h('a', { class: 'btn btn-ghost', href: '/signin', text: 'Sign in' }),
      h('a', { class: 'btn btn-primary', href: '/signup', text: 'Sign up' }));
    return;
  }
  bell.badge = h('span', { class: 'badge', id: 'bell-count', hidden: true, text: '0' });
  bell.link = h('a', { class: 'bell', href: '/notifications', id: 'bell', 'aria-label': 'Notifications' },
    h('span', { class: 'bell-icon', 'aria-hidden': 'true' }), bell.badge);
  const items = [
    h('a', { href: user.channels?.[0] ? `/channel/${user.channels[0].id}` : '/account', text: 'My channel', role: 'menuitem' }),
    h('a', { href: '/account', text: 'Account', role: 'menuitem' }),
    user.is_admin ? h('a', { href: '/admin', text: 'Admin', role: 'menuitem' }) : null,
    h('button', { type: 'button', role: 'menuitem', text: 'Sign out', onclick: doSignOut }),
  ];
  const menu = h('div', { class: 'menu', role: 'menu', hidden: true, id: 'user-menu' }, items);
  const toggle = h('button', {
    type: 'button', class: 'avatar', 'aria-haspopup': 'true', 'aria-expanded': 'false',
    'aria-controls': 'user-menu', title: user.username, id: 'user-menu-button',
    'aria-label': `Account menu for ${user.username}`,
    text: (user.display_name || user.username).slice(0, 1).toUpperCase(),
  });
  const close = () => { menu.hidden = true; toggle.setAttribute('aria-expanded', 'false'); };
  toggle.addEventListener('click', () => {
    menu.hidden = !menu.hidden;
    toggle.setAttribute('aria-expanded', String(!menu.hidden));
    if (!menu.hidden) menu.querySelector('a,button')?.focus();
  });
  menu.addEventListener('click', close);
  menu.addEventListener('keydown', (e) => { if (e.key === 'Escape') { close(); toggle.focus(); } });
  closeMenu = close;
  clear(area, bell.link, h('div', { class: 'menuwrap' }, toggle, menu));
  setUnread(bell.count);
}

async function doSignOut() {
  const { signOut } = await import('./api.js');
  await signOut().catch(() => {});
  navigate('/');
}

live.on((message) => {
  const note = notificationOf(message);
  if (note) {
    setUnread(bell.count + (note.read ? 0 : 1));
    refreshUnread();
    if (!note.read && !message.replayed) {
      import('./pages/notifications.js').then((m) => toast(h('p', {}, m.describe(note)).textContent)).catch(() => {});
    }
  } else if (message.type === 'hello' && typeof message.unread_count === 'number') {
    setUnread(message.unread_count);
  } else if (message.type === 'resumed') {
    refreshUnread();
  }
});

onSession((user) => {
  renderUserArea(user);
  if (user) {
    live.restart(user.id);
    refreshUnread();
  } else {
    live.stop();
    setUnread(0);
  }
});

export { items };

(async () => {
  await loadUser();
  render();
})();
