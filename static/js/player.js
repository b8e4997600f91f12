// The video player: hls.js for adaptive HLS wherever Media Source Extensions exist, native
// HLS on Safari only, progressive MP4 (one file per rendition) otherwise. Custom controls
// give a keyboard-usable seek bar with storyboard previews and a quality menu.
import { formatDuration, h } from './dom.js';
import { cueAt, loadStoryboard } from './storyboard.js';
import { isSafari, loadHls } from './vendor.js';

function icon(name) {
  return h('span', { class: `icon icon-${name}`, 'aria-hidden': 'true' });
}

export async function createPlayer(video, { preferredQuality, startAt = 0, onTime } = {}) {
  const media = h('video', { class: 'player-video', playsinline: true, preload: 'metadata', id: 'player-video' });
  if (video.poster) media.poster = video.poster;
  const playBtn = h('button', { type: 'button', class: 'pbtn', 'aria-label': 'Play', id: 'play-button' }, icon('play'));
  const seek = h('input', { type: 'range', class: 'seek', min: '0', max: '0', step: '0.1', value: '0', 'aria-label': 'Seek', id: 'seek' });
  const time = h('span', { class: 'ptime', text: '0:00 / 0:00' });
  const muteBtn = h('button', { type: 'button', class: 'pbtn', 'aria-label': 'Mute' }, icon('volume'));
  const volume = h('input', { type: 'range', class: 'volume', min: '0', max: '1', step: '0.05', value: '1', 'aria-label': 'Volume' });
  const quality = h('select', { class: 'quality', id: 'quality', 'aria-label': 'Quality' }, h('option', { value: 'auto', text: 'Auto' }));
  const fullBtn = h('button', { type: 'button', class: 'pbtn', 'aria-label': 'Full screen' }, icon('full'));
  const preview = h('div', { class: 'sb-preview', hidden: true, 'aria-hidden': 'true' },
    h('div', { class: 'sb-image' }), h('span', { class: 'sb-time' }));
  const errorEl = h('div', { class: 'player-error', role: 'alert', hidden: true });
  const seekWrap = h('div', { class: 'seekwrap' }, seek, preview);
  const controls = h('div', { class: 'controls' }, playBtn, seekWrap, time, muteBtn, volume, quality, fullBtn);
  const root = h('div', { class: 'player', tabindex: '0', 'aria-label': `Video player: ${video.title}`, dataset: { state: 'loading' } },
    media, errorEl, controls);

  let hls = null;
  let engine = 'none';
  let dragging = false;
  let recoveries = 0;

  const showError = (message) => {
    errorEl.textContent = message;
    errorEl.hidden = false;
    root.dataset.state = 'error';
  };

  // --- sources --------------------------------------------------------------------
  const streams = video.streams || {};
  const progressive = [...(streams.progressive || [])].sort((a, b) => (b.height || 0) - (a.height || 0));

  function useProgressive(reason) {
    if (hls) { hls.destroy(); hls = null; }
    const list = progressive.length ? progressive
      : streams.original ? [{ name: 'original', url: streams.original }] : [];
    if (!list.length) {
      showError(reason || 'This video has no playable stream yet.');
      return;
    }
    engine = 'progressive';
    const wanted = list.find((p) => p.name === preferredQuality || `${p.height}p` === preferredQuality);
    const first = wanted || list.find((p) => (p.height || 0) <= 720) || list[0];
    quality.replaceChildren(...list.map((p) => h('option', { value: p.url, text: p.name || `${p.height}p` })));
    quality.value = first.url;
    media.src = first.url;
    root.dataset.engine = engine;
  }

  function fillLevels() {
    const levels = hls.levels.map((level, index) => ({ level, index }))
      .sort((a, b) => (b.level.height || 0) - (a.level.height || 0));
    quality.replaceChildren(h('option', { value: '-1', text: 'Auto' }),
      ...levels.map(({ level, index }) => h('option', {
        value: String(index),
        text: level.height ? `${level.height}p` : `${Math.round((level.bitrate || 0) / 1000)} kbps`,
      })));
    const wanted = levels.find(({ level }) => `${level.height}p` === preferredQuality);
    if (wanted) {
      hls.currentLevel = wanted.index;
      quality.value = String(wanted.index);
    } else quality.value = '-1';
  }

  async function start() {
    const Hls = streams.hls ? await loadHls() : null;
    if (Hls && Hls.isSupported()) {
      engine = 'hls.js';
      hls = new Hls({ startPosition: startAt > 0 ? startAt : -1, enableWorker: true, backBufferLength: 60 });
      hls.on(Hls.Events.MANIFEST_PARSED, fillLevels);
      hls.on(Hls.Events.LEVEL_SWITCHED, (_event, data) => {
        const level = hls.levels[data.level];
        const auto = quality.querySelector('option[value="-1"]');
        if (auto) auto.textContent = hls.autoLevelEnabled && level ? `Auto (${level.height}p)` : 'Auto';
      });
      hls.on(Hls.Events.ERROR, (_event, data) => {
        if (!data.fatal) return;
        recoveries += 1;
        if (recoveries <= 2 && data.type === Hls.ErrorTypes.NETWORK_ERROR) hls.startLoad();
        else if (recoveries <= 2 && data.type === Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
        else useProgressive(`Playback failed (${data.details}).`);
      });
      hls.loadSource(streams.hls);
      hls.attachMedia(media);
    } else if (streams.hls && isSafari() && media.canPlayType('application/vnd.apple.mpegurl')) {
      engine = 'native';
      media.src = streams.hls;
    } else {
      useProgressive();
    }
    root.dataset.engine = engine;
  }

  quality.addEventListener('change', () => {
    if (hls) {
      hls.currentLevel = Number(quality.value);
    } else if (engine === 'progressive') {
      const at = media.currentTime;
      const playing = !media.paused;
      media.src = quality.value;
      media.addEventListener('loadedmetadata', () => {
        media.currentTime = at;
        if (playing) media.play().catch(() => {});
      }, { once: true });
    }
  });

  // --- state -> controls -----------------------------------------------------------
  const duration = () => (Number.isFinite(media.duration) ? media.duration : video.duration || 0);
  const syncTime = () => {
    const d = duration();
    seek.max = String(d || 0);
    if (!dragging) seek.value = String(media.currentTime);
    seek.style.setProperty('--played', d ? `${(media.currentTime / d) * 100}%` : '0%');
    time.textContent = `${formatDuration(media.currentTime)} / ${formatDuration(d)}`;
    seek.setAttribute('aria-valuetext', `${formatDuration(media.currentTime)} of ${formatDuration(d)}`);
    onTime?.(media.currentTime);
  };
  media.addEventListener('timeupdate', syncTime);
  media.addEventListener('durationchange', syncTime);
  media.addEventListener('loadedmetadata', () => {
    syncTime();
    if (engine !== 'hls.js' && startAt > 0) media.currentTime = startAt;
  }, { once: true });
  const syncPlay = () => {
    const paused = media.paused;
    playBtn.setAttribute('aria-label', paused ? 'Play' : 'Pause');
    playBtn.replaceChildren(icon(paused ? 'play' : 'pause'));
    if (root.dataset.state !== 'error') root.dataset.state = paused ? 'paused' : 'playing';
  };
  media.addEventListener('play', syncPlay);
  media.addEventListener('pause', syncPlay);
  media.addEventListener('ended', syncPlay);
  media.addEventListener('error', () => {
    if (engine === 'native' && progressive.length) useProgressive();
    else showError(`The video cannot be played (${media.error?.message || `code ${media.error?.code}`}).`);
  });
  media.addEventListener('volumechange', () => {
    volume.value = String(media.muted ? 0 : media.volume);
    muteBtn.setAttribute('aria-label', media.muted ? 'Unmute' : 'Mute');
    muteBtn.replaceChildren(icon(media.muted ? 'muted' : 'volume'));
  });

  // --- controls -> media -----------------------------------------------------------
  const toggle = () => (media.paused || media.ended ? media.play().catch((e) => showError(e.message)) : media.pause());
  playBtn.addEventListener('click', toggle);
  media.addEventListener('click', toggle);
  seek.addEventListener('input', () => { dragging = true; time.textContent = `${formatDuration(Number(seek.value))} / ${formatDuration(duration())}`; });
  seek.addEventListener('change', () => { dragging = false; media.currentTime = Number(seek.value); });
  muteBtn.addEventListener('click', () => { media.muted = !media.muted; });
  volume.addEventListener('input', () => { media.volume = Number(volume.value); media.muted = media.volume === 0; });
  fullBtn.addEventListener('click', () => {
    if (document.fullscreenElement) document.exitFullscreen();
    else root.requestFullscreen?.().catch(() => {});
  });
  root.addEventListener('keydown', (event) => {
    if (event.target.matches('input, select') && !['k', 'f', 'm'].includes(event.key)) return;
    const keys = {
      ' ': toggle, k: toggle, f: () => fullBtn.click(), m: () => muteBtn.click(),
      ArrowLeft: () => { media.currentTime = Math.max(0, media.currentTime - 5); },
      ArrowRight: () => { media.currentTime = Math.min(duration(), media.currentTime + 5); },
    };
    const action = keys[event.key];
    if (action && !(event.target === playBtn && event.key === ' ')) {
      event.preventDefault();
      action();
    }
  });

  // --- storyboard previews on the seek bar ----------------------------------------
  let cues = [];
  if (video.storyboard) loadStoryboard(video.storyboard).then((c) => { cues = c; }).catch(() => {});
  const image = preview.querySelector('.sb-image');
  const label = preview.querySelector('.sb-time');
  seekWrap.addEventListener('pointermove', (event) => {
    const rect = seek.getBoundingClientRect();
    const fraction = Math.min(1, Math.max(0, (event.clientX - rect.left) / rect.width));
    const at = fraction * duration();
    label.textContent = formatDuration(at);
    const cue = cueAt(cues, at);
    if (cue) {
      image.hidden = false;
      image.style.backgroundImage = `url("${cue.url}")`;
      image.style.backgroundPosition = `-${cue.x}px -${cue.y}px`;
      image.style.width = `${cue.w}px`;
      image.style.height = `${cue.h}px`;
    } else image.hidden = true;
    preview.hidden = false;
    const half = (cue?.w || 60) / 2;
    preview.style.left = `${Math.min(rect.width - half, Math.max(half, event.clientX - rect.left))}px`;
  });
  seekWrap.addEventListener('pointerleave', () => { preview.hidden = true; });

  await start();
  return {
    el: root,
    media,
    get engine() { return engine; },
    destroy() {
      if (hls) hls.destroy();
      media.pause();
      media.removeAttribute('src');
      media.load();
    },
  };
}
