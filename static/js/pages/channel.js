import { api } from '../api.js';
import { h, clear, errorBox, formatCount } from '../dom.js';
import { subscribeButton, videoGrid } from '../components.js';

export default async function channelPage(main, [channelId]) {
  let channel;
  try {
    channel = await api(`/api/channels/${encodeURIComponent(channelId)}`);
  } catch (err) {
    clear(main, h('h1', { text: 'Channel not found' }), errorBox(err));
    return;
  }
  document.title = `${channel.display_name} · Reelhouse`;
  const count = h('span', { text: formatCount(channel.subscriber_count, 'subscriber') });
  const grid = videoGrid(`/api/channels/${channel.id}/videos`, { limit: 24 }, { empty: 'This channel has no videos yet.' });
  clear(main,
    h('header', { class: 'channel-head' },
      h('div', { class: 'channel-avatar', 'aria-hidden': 'true', text: (channel.display_name || channel.handle).slice(0, 1).toUpperCase() }),
      h('div', { class: 'channel-info' },
        h('h1', { text: channel.display_name }),
        h('p', { class: 'muted' }, `@${channel.handle} · `, count, ` · ${formatCount(channel.video_count, 'video')}`),
        channel.description ? h('p', { class: 'channel-desc', text: channel.description }) : null),
      subscribeButton(channel, {
        onChange: (on) => {
          channel.subscriber_count += on ? 1 : -1;
          count.textContent = formatCount(channel.subscriber_count, 'subscriber');
        },
      })),
    h('h2', { text: 'Videos' }), grid);
  await grid.ready;
}
