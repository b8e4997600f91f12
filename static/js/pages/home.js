import { h, clear } from '../dom.js';
import { videoGrid } from '../components.js';

export default async function home(main) {
  document.title = 'Reelhouse';
  const newest = videoGrid('/api/videos', { sort: 'newest', limit: 24 }, { empty: 'Nobody has published a video yet.' });
  const popular = videoGrid('/api/videos', { sort: 'views', limit: 12 }, { empty: 'No views yet.' });
  clear(main,
    h('section', { class: 'section', 'aria-labelledby': 'newest-h' }, h('h2', { id: 'newest-h', text: 'Newest' }), newest),
    h('section', { class: 'section', 'aria-labelledby': 'popular-h' }, h('h2', { id: 'popular-h', text: 'Most viewed' }), popular));
  await Promise.all([newest.ready, popular.ready]);
}
