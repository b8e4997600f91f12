import { api, session } from '../api.js';
import { clear, errorBox, formatCount, h, timeAgo, toast } from '../dom.js';
import { commentsSection } from '../comments.js';
import { subscribeButton, videoCard } from '../components.js';
import { manageButton } from '../manage.js';
import { createPlayer } from '../player.js';
import { playable, processingPanel } from '../processing.js';

const REPORT_EVERY_MS = 10000;

function ratingButtons(video) {
  let rating = video.my_rating || video.rating || 'none';
  let likes = video.likes || 0;
  let dislikes = video.dislikes || 0;
  const like = h('button', { type: 'button', class: 'btn btn-ghost', id: 'like-button' });
  const dislike = h('button', { type: 'button', class: 'btn btn-ghost', id: 'dislike-button' });
  const render = () => {
    like.replaceChildren(h('span', { class: 'icon icon-like', 'aria-hidden': 'true' }), String(likes));
    like.setAttribute('aria-label', `Like (${likes})`);
    like.setAttribute('aria-pressed', String(rating === 'like'));
    dislike.replaceChildren(h('span', { class: 'icon icon-dislike', 'aria-hidden': 'true' }), String(dislikes));
    dislike.setAttribute('aria-label', `Dislike (${dislikes})`);
    dislike.setAttribute('aria-pressed', String(rating === 'dislike'));
  };
  async function rate(wanted) {
    if (!session.user) { toast('Sign in to rate videos.'); return; }
    const next = rating === wanted ? 'none' : wanted;
    try {
      const result = await api(`/api/videos/${video.id}/rating`, { method: 'PUT', body: { rating: next } });
      likes = result?.likes ?? likes + (next === 'like') - (rating === 'like');
      dislikes = result?.dislikes ?? dislikes + (next === 'dislike') - (rating === 'dislike');
      rating = result?.rating ?? next;
      render();
    } catch (err) { toast(err.detail || err.message, 'error'); }
  }
  if (session.user) {
    api(`/api/videos/${video.id}/rating`).then((r) => {
      rating = r?.rating ?? rating;
      likes = r?.likes ?? likes;
      dislikes = r?.dislikes ?? dislikes;
      render();
    }).catch(() => {});
  }
  like.addEventListener('click', () => rate('like'));
  dislike.addEventListener('click', () => rate('dislike'));
  render();
  return h('div', { class: 'rating', role: 'group', 'aria-label': 'Rate this video' }, like, dislike);
}

function reportProgress(videoId, position, keepalive = false) {
  if (!Number.isFinite(position)) return;
  api(`/api/videos/${videoId}/progress`, { method: 'POST', body: { position: Math.floor(position * 10) / 10 }, keepalive }).catch(() => {});
}

export default async function watch(main, [videoId], { navigate }) {
  let video;
  try {
    video = await api(`/api/videos/${encodeURIComponent(videoId)}`);
  } catch (err) {
    clear(main, h('h1', { text: err.status === 404 ? 'Video not found' : 'Cannot open this video' }), errorBox(err));
    return undefined;
  }
  document.title = `${video.title} · Reelhouse`;
  const stops = [];

  const stage = h('div', { class: 'stage' });
  const titleEl = h('h1', { class: 'watch-title', id: 'video-title', text: video.title });
  const descText = h('p', { class: 'description-text', text: video.description || '' });
  const manage = video.can_manage ? manageButton(video, {
    onSaved: (updated) => {
      titleEl.textContent = updated.title;
      descText.textContent = updated.description || '';
      document.title = `${updated.title} · Reelhouse`;
      toast('Saved.');
    },
    onDeleted: () => { toast('The video was deleted.'); navigate('/', { replace: true }); },
    // A failed video shows its processing again; a ready one plays on meanwhile.
    onReprocessed: (updated) => { if (updated.status !== 'ready') navigate(`/watch/${video.id}`, { replace: true }); },
  }) : null;
  const channel = video.channel;
  const side = h('aside', { class: 'watch-side', 'aria-label': 'More videos' }, h('h2', { text: 'More videos' }));
  clear(main, h('div', { class: 'watch' },
    h('div', { class: 'watch-main' },
      stage,
      titleEl,
      h('div', { class: 'watch-bar' },
        channel ? h('div', { class: 'watch-channel' },
          h('a', { href: `/channel/${channel.id}`, class: 'channel-link', text: channel.display_name || channel.handle }),
          subscribeButton(channel)) : null,
        h('div', { class: 'watch-actions' }, manage?.toggle, ratingButtons(video))),
      manage?.panel,
      h('div', { class: 'description' },
        h('p', { class: 'muted', text: [formatCount(video.views, 'view'), timeAgo(video.published_at || video.created_at), video.privacy !== 'public' ? video.privacy : ''].filter(Boolean).join(' · ') }),
        descText),
      commentsSection(video)),
    side));

  api('/api/videos?sort=newest&limit=8').then((page) => {
    const list = (page?.items || []).filter((v) => v.id !== video.id).slice(0, 6);
    side.append(list.length ? h('div', { class: 'grid grid-compact' }, list.map(videoCard))
      : h('p', { class: 'muted', text: 'No other videos yet.' }));
  }).catch(() => {});

  async function mountPlayer() {
    const preferred = session.user?.preferences?.default_quality;
    const resume = Number(video.resume_position || 0);
    // Resume unless the saved point is at the very start or in the last moments.
    const startAt = resume > 1 && (!video.duration || resume < Math.min(video.duration - 1, video.duration * 0.95)) ? resume : 0;
    const player = await createPlayer(video, { preferredQuality: preferred, startAt });
    clear(stage, player.el);
    if (startAt) toast(`Resuming where you left off`);
    let lastReport = 0;
    const media = player.media;
    const tick = setInterval(() => {
      if (!media.paused && Date.now() - lastReport >= REPORT_EVERY_MS) {
        lastReport = Date.now();
        reportProgress(video.id, media.currentTime);
      }
    }, 1000);
    const onPause = () => { if (media.currentTime > 0) reportProgress(video.id, media.currentTime); };
    // Closing the tab: keepalive lets the last position reach the server anyway.
    const onHide = () => { if (media.currentTime > 0) reportProgress(video.id, media.currentTime, true); };
    media.addEventListener('pause', onPause);
    window.addEventListener('pagehide', onHide);
    if (session.user?.preferences?.autoplay) media.play().catch(() => {});
    stops.push(() => {
      clearInterval(tick);
      media.removeEventListener('pause', onPause);
      window.removeEventListener('pagehide', onHide);
      if (media.currentTime > 0) reportProgress(video.id, media.currentTime, true);
      player.destroy();
    });
  }

  if (playable(video)) {
    await mountPlayer();
  } else {
    const panel = processingPanel(video.id, {
      canManage: video.can_manage,
      onPlayable: async () => {
        panel.stop();
        video = await api(`/api/videos/${encodeURIComponent(videoId)}`);
        await mountPlayer();
      },
    });
    clear(stage, h('div', { class: 'stage-wait' }, panel));
    stops.push(() => panel.stop());
  }
  return () => stops.forEach((fn) => fn());
}
