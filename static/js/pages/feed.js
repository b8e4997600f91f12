import { session } from '../api.js';
import { h, clear } from '../dom.js';
import { requireSignIn, videoGrid } from '../components.js';

export default async function feed(main) {
  document.title = 'Subscriptions · Reelhouse';
  if (!session.user) return requireSignIn(main, 'see new videos from the channels you follow');
  const grid = videoGrid('/api/feed', { limit: 24 }, { empty: 'No videos from your subscriptions yet. Subscribe to a channel to see its new videos here.' });
  clear(main, h('h1', { text: 'Subscriptions' }), grid);
  await grid.ready;
}
