import { api, items, query, session } from '../api.js';
import { clear, errorBox, h, timeAgo, toast } from '../dom.js';
import { requireSignIn } from '../components.js';
import { live, notificationOf } from '../live.js';

// The shell (app.js) owns the bell; it recounts when asked.
const askForUnread = () => document.dispatchEvent(new CustomEvent('rh:refresh-unread'));

export function describe(note) {
  const d = note.data || {};
  const video = d.video ? h('a', { href: `/watch/${d.video.id}`, text: d.video.title || 'a video' }) : 'a video';
  const channel = d.channel ? h('a', { href: `/channel/${d.channel.id}`, text: d.channel.display_name || d.channel.handle }) : 'a channel';
  const who = d.author?.username || d.user?.username || d.subscriber?.username || d.username || 'Someone';
  switch (note.kind) {
    case 'new_video': return [channel, ' published ', video];
    case 'video_processed': return ['Your video ', video, ' is ready to watch'];
    case 'video_failed': return ['Processing failed for ', video, d.error ? `: ${d.error}` : ''];
    case 'comment': return [`${who} commented on `, video];
    case 'reply': return [`${who} replied to your comment on `, video];
    case 'subscriber': return [`${who} subscribed to `, channel];
    default: return [note.kind || 'Notification'];
  }
}

export default async function notificationsPage(main) {
  document.title = 'Notifications · Reelhouse';
  if (!session.user) return requireSignIn(main, 'see your notifications');
  const list = h('ul', { class: 'notes', id: 'notification-list' });
  const status = h('div');
  const more = h('button', { type: 'button', class: 'btn', hidden: true, text: 'Older' });
  const readAll = h('button', { type: 'button', class: 'btn', text: 'Mark all as read' });
  const item = (note) => {
    const li = h('li', { class: note.read ? 'note' : 'note unread', dataset: { id: note.id, kind: note.kind } },
      h('p', {}, describe(note)), h('span', { class: 'muted', text: timeAgo(note.created_at) }));
    if (!note.read) {
      const mark = h('button', { type: 'button', class: 'linklike', text: 'Mark as read' });
      mark.addEventListener('click', async () => {
        try {
          await api(`/api/notifications/${note.id}/read`, { method: 'POST' });
          li.classList.remove('unread');
          mark.remove();
          askForUnread();
        } catch (err) { toast(err.detail, 'error'); }
      });
      li.append(mark);
    }
    return li;
  };
  let cursor = null;
  async function load() {
    try {
      const page = items(await api(`/api/notifications${query({ cursor, limit: 30 })}`));
      list.append(...page.items.map(item));
      cursor = page.next;
      more.hidden = !cursor;
      if (!list.children.length) clear(status, h('p', { class: 'muted', text: 'Nothing yet.' }));
    } catch (err) { clear(status, errorBox(err)); }
  }
  readAll.addEventListener('click', async () => {
    try {
      await api('/api/notifications/read-all', { method: 'POST' });
      for (const li of list.querySelectorAll('.unread')) {
        li.classList.remove('unread');
        li.querySelector('button')?.remove();
      }
      askForUnread();
    } catch (err) { toast(err.detail, 'error'); }
  });
  more.addEventListener('click', load);
  clear(main, h('div', { class: 'page-head' }, h('h1', { text: 'Notifications' }), readAll), status, list, more);
  const off = live.on((message) => {
    const note = notificationOf(message);
    if (note) { clear(status); list.prepend(item(note)); }
  });
  await load();
  return off;
}
