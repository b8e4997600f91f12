import { session } from '../api.js';
import { clear, errorBox, field, formatBytes, formatDuration, h } from '../dom.js';
import { requireSignIn } from '../components.js';
import { processingPanel } from '../processing.js';
import { createUpload, Rate, unfinishedUploads } from '../uploader.js';

export default async function uploadPage(main) {
  document.title = 'Upload · Reelhouse';
  if (!session.user) return requireSignIn(main, 'upload videos');
  const stops = [];
  let file = null;
  let transfer = null;

  const fileInput = h('input', { type: 'file', id: 'file-input', accept: 'video/*,audio/*,.mkv,.mov,.mp4,.webm', class: 'visually-hidden' });
  const fileLabel = h('span', { class: 'drop-file', id: 'drop-file', text: 'No file chosen' });
  const drop = h('label', { class: 'dropzone', for: 'file-input', id: 'dropzone' },
    fileInput,
    h('span', { class: 'drop-icon', 'aria-hidden': 'true' }),
    h('strong', { text: 'Drag a video here' }), h('span', { class: 'muted', text: 'or click to choose a file' }),
    fileLabel);
  const title = h('input', { type: 'text', name: 'title', id: 'title', maxlength: '200', required: true });
  const description = h('textarea', { name: 'description', id: 'description', rows: '4', maxlength: '5000' });
  const privacy = h('select', { name: 'privacy', id: 'privacy' },
    ['public', 'unlisted', 'private'].map((p) => h('option', { value: p, text: p[0].toUpperCase() + p.slice(1) })));
  const channels = session.user.channels || [];
  const channel = h('select', { name: 'channel', id: 'channel' },
    channels.map((c) => h('option', { value: c.id, text: c.display_name || c.handle })));
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', id: 'upload-button', text: 'Upload' });
  const resumeNote = h('p', { class: 'notice', id: 'resume-note', hidden: true });
  const formStatus = h('div', { id: 'upload-error' });
  const form = h('form', { class: 'upload-form', novalidate: true },
    drop, resumeNote,
    field('Title', title), field('Description', description),
    h('div', { class: 'field-row' }, field('Privacy', privacy), field('Channel', channel)),
    formStatus, h('div', { class: 'row-end' }, submit));

  const bar = h('progress', { max: '100', value: '0', id: 'upload-progress', 'aria-label': 'Upload progress' });
  const percent = h('span', { id: 'upload-percent', class: 'pct', text: '0%' });
  const stats = h('span', { id: 'upload-stats', class: 'muted' });
  const pauseBtn = h('button', { type: 'button', class: 'btn', id: 'pause-button', text: 'Pause' });
  const cancelBtn = h('button', { type: 'button', class: 'btn btn-ghost', id: 'cancel-button', text: 'Cancel' });
  const transferStatus = h('div', { id: 'transfer-status' });
  const progressBox = h('section', { class: 'transfer', hidden: true, 'aria-label': 'Upload', id: 'transfer', dataset: { state: 'idle' } },
    h('h2', { id: 'transfer-name', text: 'Uploading' }),
    h('div', { class: 'progress-row' }, bar, percent),
    h('div', { class: 'transfer-foot' }, stats, h('div', { class: 'row-end' }, pauseBtn, cancelBtn)),
    transferStatus);
  const processingBox = h('div', { id: 'processing-box' });
  const pending = h('div', { class: 'pending', id: 'pending-uploads' });

  clear(main, h('div', { class: 'upload-page' },
    h('h1', { text: 'Upload a video' }), pending, form, progressBox, processingBox));

  // Uploads left unfinished by an earlier visit (reload, closed tab, lost network).
  unfinishedUploads().then((list) => {
    if (!list.length) return;
    clear(pending, h('div', { class: 'notice' },
      h('strong', { text: 'Unfinished uploads: ' }),
      list.map((u, i) => [i ? ', ' : '', `${u.metadata?.filename || 'file'} (${formatBytes(u.size)})`]),
      '. Choose the same file again to continue where it stopped.'));
  });

  async function choose(picked) {
    if (!picked) return;
    file = picked;
    fileLabel.textContent = `${file.name} · ${formatBytes(file.size)}`;
    drop.classList.add('has-file');
    if (!title.value) title.value = file.name.replace(/\.[^.]+$/, '').replace(/[_-]+/g, ' ');
    // Does this browser hold a partial upload of this very file?
    transfer = await createUpload(file, {}, {});
    const prev = transfer.previous;
    resumeNote.hidden = !prev;
    if (prev) {
      resumeNote.textContent = 'Part of this file was already uploaded: the upload will continue where it stopped.';
      const meta = prev.metadata || {};
      if (meta.title) title.value = meta.title;
      if (meta.description) description.value = meta.description;
      if (meta.privacy) privacy.value = meta.privacy;
      if (meta.channel) channel.value = meta.channel;
    }
  }
  fileInput.addEventListener('change', () => choose(fileInput.files[0]));
  for (const type of ['dragenter', 'dragover']) {
    drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add('dragging'); });
  }
  for (const type of ['dragleave', 'drop']) {
    drop.addEventListener(type, () => drop.classList.remove('dragging'));
  }
  drop.addEventListener('drop', (e) => { e.preventDefault(); choose(e.dataTransfer.files[0]); });

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clear(formStatus);
    if (!file) { clear(formStatus, errorBox({ detail: 'Choose a video file first.' })); return; }
    if (!title.value.trim()) { clear(formStatus, errorBox({ detail: 'Give the video a title.' })); title.focus(); return; }
    submit.disabled = true;
    await start();
  });

  async function start() {
    const metadata = { title: title.value.trim(), description: description.value, privacy: privacy.value, channel: channel.value };
    const rate = new Rate();
    let started = performance.now();
    let videoId = null;
    form.hidden = true;
    pending.hidden = true;
    progressBox.hidden = false;
    progressBox.dataset.state = 'uploading';
    clear(progressBox.querySelector('h2'), `Uploading ${file.name}`);
    const showProcessing = (id) => {
      if (!id || processingBox.dataset.videoId === id) return;
      processingBox.dataset.videoId = id;
      const panel = processingPanel(id);
      clear(processingBox, panel);
      stops.push(() => panel.stop());
    };
    transfer = await createUpload(file, metadata, {
      onVideoId(id) { videoId = id; progressBox.dataset.videoId = id; },
      onResumed() { transferStatus.replaceChildren(h('p', { class: 'muted', id: 'resumed-note', text: 'Resuming the earlier upload.' })); },
      onProgress(sent, total) {
        rate.add(sent);
        const pct = total ? (sent / total) * 100 : 0;
        bar.value = pct;
        percent.textContent = `${pct.toFixed(pct < 10 ? 1 : 0)}%`;
        const speed = rate.bytesPerSecond;
        const left = speed > 0 ? (total - sent) / speed : NaN;
        stats.textContent = `${formatBytes(sent)} of ${formatBytes(total)}${speed ? ` · ${formatBytes(speed)}/s` : ''}${Number.isFinite(left) && sent < total ? ` · ${formatDuration(left)} left` : ''}`;
      },
      onSuccess(id) {
        videoId = id || videoId;
        bar.value = 100;
        percent.textContent = '100%';
        progressBox.dataset.state = 'done';
        clear(progressBox.querySelector('h2'), `Uploaded ${file.name}`);
        const seconds = (performance.now() - started) / 1000;
        stats.textContent = `${formatBytes(file.size)} uploaded in ${formatDuration(seconds)}`;
        pauseBtn.hidden = true;
        cancelBtn.hidden = true;
        transferStatus.replaceChildren(h('a', { href: '/upload', class: 'btn', id: 'upload-another', text: 'Upload another video' }));
        showProcessing(videoId);
      },
      onError(err) {
        progressBox.dataset.state = 'error';
        clear(transferStatus, errorBox(err));
        pauseBtn.textContent = 'Retry';
      },
    });
    started = performance.now();
    transfer.start(true);
  }

  pauseBtn.addEventListener('click', async () => {
    if (!transfer) return;
    if (progressBox.dataset.state === 'uploading') {
      await transfer.pause();
      progressBox.dataset.state = 'paused';
      pauseBtn.textContent = 'Resume';
      stats.textContent = `${stats.textContent.split(' · ')[0]} · paused`;
    } else {
      clear(transferStatus);
      progressBox.dataset.state = 'uploading';
      pauseBtn.textContent = 'Pause';
      transfer.resume();
    }
  });
  cancelBtn.addEventListener('click', async () => {
    await transfer?.cancel();
    progressBox.hidden = true;
    form.hidden = false;
    submit.disabled = false;
    progressBox.dataset.state = 'idle';
  });

  return () => stops.forEach((fn) => fn());
}
