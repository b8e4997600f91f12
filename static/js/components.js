// Pieces shared by several pages: video cards and grids, the subscribe button.
import { api, items, query, session } from './api.js';
import { clear, errorBox, formatCount, formatDuration, h, timeAgo, toast } from './dom.js';

export function videoCard(video) {
  const channel = video.channel;
  const thumb = h('a', { class: 'thumb', href: `/watch/${video.id}`, tabindex: '-1', 'aria-hidden': 'true' },
    video.poster ? h('img', { src: video.poster, alt: '', loading: 'lazy', decoding: 'async' })
      : h('span', { class: 'thumb-empty', text: video.status === 'ready' ? '' : video.status }),
    video.duration ? h('span', { class: 'duration', text: formatDuration(video.duration) }) : null);
  const meta = [formatCount(video.views, 'view'), timeAgo(video.published_at || video.created_at)].filter(Boolean).join(' · ');
  return h('article', { class: 'card', dataset: { videoId: video.id } },
    thumb,
    h('div', { class: 'card-body' },
      h('h3', { class: 'card-title' }, h('a', { href: `/watch/${video.id}`, text: video.title || 'Untitled' })),
      channel ? h('a', { class: 'card-channel', href: `/channel/${channel.id}`, text: channel.display_name || channel.handle }) : null,
      h('p', { class: 'card-meta muted', text: meta }),
      video.privacy && video.privacy !== 'public' ? h('span', { class: 'tag', text: video.privacy }) : null));
}

// A grid of videos from a paginated list endpoint, with a "Load more" button.
export function videoGrid(path, params = {}, { empty = 'No videos yet.' } = {}) {
  const grid = h('div', { class: 'grid' });
  const more = h('button', { type: 'button', class: 'btn', hidden: true, text: 'Load more' });
  const status = h('div', { class: 'grid-status' });
  const wrap = h('div', { class: 'grid-wrap' }, grid, status, more);
  let cursor = null;
  async function load() {
    more.disabled = true;
    try {
      const page = items(await api(path + query({ ...params, cursor })));
      grid.append(...page.items.map(videoCard));
      cursor = page.next;
      more.hidden = !cursor;
      clear(status, grid.children.length ? null : h('p', { class: 'muted', text: empty }));
    } catch (err) {
      clear(status, errorBox(err));
    } finally {
      more.disabled = false;
    }
  }
  more.addEventListener('click', load);
  wrap.ready = load();
  return wrap;
}

// Subscribe / unsubscribe with the notification preference (all | none).
export function subscribeButton(channel, { onChange } = {}) {
  const wrap = h('div', { class: 'subscribe' });
  let subscription = channel.subscription ?? null;
  let subscribed = Boolean(channel.subscribed ?? subscription);
  const render = () => {
    const own = session.user?.channels?.some((c) => c.id === channel.id);
    if (own) { clear(wrap); return; }
    const button = h('button', {
      type: 'button', class: subscribed ? 'btn' : 'btn btn-primary', id: 'subscribe-button',
      'aria-pressed': String(subscribed), text: subscribed ? 'Subscribed' : 'Subscribe', onclick: toggle,
    });
    const notify = subscribed ? h('button', {
      type: 'button', class: 'btn btn-ghost', 'aria-pressed': String((subscription?.notify || 'all') === 'all'),
      title: 'Notify me of new videos', text: (subscription?.notify || 'all') === 'all' ? 'Notifications on' : 'Notifications off',
      onclick: toggleNotify,
    }) : null;
    clear(wrap, button, notify);
  };
  async function toggle() {
    if (!session.user) { location.assign(`/signin?next=${encodeURIComponent(location.pathname)}`); return; }
    try {
      if (subscribed) {
        await api(`/api/subscriptions/${channel.id}`, { method: 'DELETE' });
        subscribed = false;
        subscription = null;
      } else {
        subscription = await api(`/api/subscriptions/${channel.id}`, { method: 'POST', body: { notify: 'all' } });
        subscribed = true;
      }
      render();
      onChange?.(subscribed);
    } catch (err) {
      toast(err.detail || err.message, 'error');
    }
  }
  async function toggleNotify() {
    const next = (subscription?.notify || 'all') === 'all' ? 'none' : 'all';
    try {
      subscription = await api(`/api/subscriptions/${channel.id}`, { method: 'PATCH', body: { notify: next } });
      render();
    } catch (err) {
      toast(err.detail || err.message, 'error');
    }
  }
  // The channel JSON may not say whether the viewer follows it: ask the list once.
  if (session.user && channel.subscribed === undefined && channel.subscription === undefined) {
    api('/api/subscriptions?limit=100').then((page) => {
      const found = items(page).items.find((s) => (s.channel?.id || s.channel_id) === channel.id);
      if (found) { subscribed = true; subscription = found; render(); }
    }).catch(() => {});
  }
  render();
  return wrap;
}

export function requireSignIn(main, what) {
  clear(main, h('section', { class: 'narrow' },
    h('h1', { text: 'Sign in needed' }),
    h('p', {}, `Sign in to ${what}. `,
      h('a', { href: `/signin?next=${encodeURIComponent(location.pathname)}`, text: 'Sign in' }), ' or ',
      h('a', { href: '/signup', text: 'create an account' }), '.')));
}
