// Live processing progress of one video: overall and per rendition, from `video.progress`
// and `video.status` events on the WebSocket topic video:<id>, with a slow poll of the
// video's JSON as a safety net (a missed event or no WebSocket at all).
import { api } from './api.js';
import { clear, formatDuration, h } from './dom.js';
import { live } from './live.js';

export function playable(video) {
  return video.status === 'ready' || Boolean(video.streams?.hls || video.streams?.progressive?.length);
}

// The owner's "Process again": the video is processed again from its stored original.
export async function reprocess(videoId) {
  return api(`/api/videos/${videoId}/reprocess`, { method: 'POST' });
}

export function processingPanel(videoId, { onPlayable, onUpdate, canManage = false } = {}) {
  const overall = h('progress', { max: '100', value: '0', id: 'processing-progress', 'aria-label': 'Processing' });
  const label = h('span', { class: 'muted', id: 'processing-label', text: 'Waiting for the upload to finish…' });
  const renditions = h('ul', { class: 'renditions', id: 'renditions', 'aria-label': 'Renditions' });
  const link = h('p', { class: 'ready-link', hidden: true });
  const again = h('button', { type: 'button', class: 'btn btn-primary', id: 'process-again', text: 'Process again', hidden: true });
  const panel = h('section', { class: 'processing', 'aria-live': 'polite', dataset: { status: 'uploading' } },
    h('h2', { text: 'Processing' }), h('div', { class: 'progress-row' }, overall, label), renditions, link, again);
  again.addEventListener('click', async () => {
    again.disabled = true;
    try {
      apply(await reprocess(videoId));
    } catch (err) {
      label.textContent = err.detail || 'The video could not be processed again.';
    } finally { again.disabled = false; }
  });
  let done = false;
  let announced = false;

  function showProgress(progress = {}) {
    const percent = Number(progress.percent ?? 0);
    overall.value = percent;
    const eta = progress.eta_seconds;
    label.textContent = `${percent.toFixed(0)}%${eta ? ` · about ${formatDuration(eta)} left` : ''}`;
    const rungs = progress.renditions || {};
    clear(renditions, Object.entries(rungs).map(([name, value]) => h('li', { dataset: { rendition: name } },
      h('span', { class: 'rname', text: name }),
      h('progress', { max: '100', value: String(Number(value) || 0), 'aria-label': `${name} rendition` }),
      h('span', { class: 'rpct', text: `${Number(value || 0).toFixed(0)}%` }))));
  }

  function showStatus(status, error) {
    panel.dataset.status = status;
    again.hidden = !(status === 'failed' && canManage);
    if (status !== 'failed') label.classList.remove('error-text');
    if (status === 'failed') {
      label.textContent = `Processing failed: ${error || 'unknown reason'}`;
      label.classList.add('error-text');
      done = true;
    } else if (status === 'ready') {
      overall.value = 100;
      label.textContent = 'Ready';
      done = true;
    } else if (status === 'uploaded') label.textContent = 'Queued for processing…';
    else if (status === 'processing' && !overall.value) label.textContent = 'Processing…';
  }

  function announce(video) {
    if (announced || !playable(video)) return;
    announced = true;
    clear(link, h('a', { class: 'btn btn-primary', href: `/watch/${videoId}`, id: 'watch-link', text: video.status === 'ready' ? 'Watch the video' : 'Watch now (still processing)' }));
    link.hidden = false;
    onPlayable?.(video);
  }

  function apply(video) {
    if (video.progress) showProgress(video.progress);
    showStatus(video.status, video.error);
    announce(video);
    if (video.status === 'ready' && link.firstChild) link.firstChild.textContent = 'Watch the video';
    onUpdate?.(video);
  }

  async function poll() {
    try { apply(await api(`/api/videos/${videoId}`)); } catch { /* try again later */ }
  }

  const off = live.on((message) => {
    if (message.video_id !== videoId) return;
    if (message.type === 'video.progress') {
      showProgress(message.progress || message);
      if (panel.dataset.status === 'uploaded' || panel.dataset.status === 'uploading') showStatus('processing');
      if (Object.values(message.renditions || message.progress?.renditions || {}).some((v) => Number(v) >= 100)) poll();
    } else if (message.type === 'video.status') {
      showStatus(message.status, message.error);
      poll();
    }
  });
  const unsubscribe = live.subscribe(`video:${videoId}`);
  poll();
  const timer = setInterval(() => { if (!done || !announced) poll(); }, live.connected ? 5000 : 2000);
  panel.stop = () => { clearInterval(timer); off(); unsubscribe(); };
  return panel;
}
