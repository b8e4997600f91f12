// Upload transports: tus 1.0.0 through tus-js-client (resumable, 5 MiB PATCHes, resumes
// after a reload by the file's fingerprint in localStorage), or one multipart POST to
// /api/videos/upload when the library is absent.
import { cookie, refreshSession } from './api.js';
import { loadTus } from './vendor.js';

export const CHUNK_SIZE = 5 * 1024 * 1024;
const VIDEO_KEY = 'rh.upload.video:';

export function rememberVideo(uploadUrl, videoId) {
  if (uploadUrl && videoId) localStorage.setItem(VIDEO_KEY + new URL(uploadUrl, location.href).pathname, videoId);
}

export function videoFor(uploadUrl) {
  return uploadUrl ? localStorage.getItem(VIDEO_KEY + new URL(uploadUrl, location.href).pathname) : null;
}

function forget(uploadUrl) {
  if (uploadUrl) localStorage.removeItem(VIDEO_KEY + new URL(uploadUrl, location.href).pathname);
}

// Unfinished uploads this browser knows of (shown so the user can pick the file again).
export async function unfinishedUploads() {
  const tus = await loadTus();
  if (!tus?.defaultOptions?.urlStorage?.findAllUploads) return [];
  try { return await tus.defaultOptions.urlStorage.findAllUploads(); } catch { return []; }
}

// Speed over a sliding window of a few seconds, so one slow chunk does not swing it.
export class Rate {
  constructor(windowMs = 5000) { this.windowMs = windowMs; this.samples = []; }
  add(bytes) {
    const now = performance.now();
    this.samples.push([now, bytes]);
    while (this.samples.length > 2 && now - this.samples[0][0] > this.windowMs) this.samples.shift();
  }
  get bytesPerSecond() {
    if (this.samples.length < 2) return 0;
    const [t0, b0] = this.samples[0];
    const [t1, b1] = this.samples[this.samples.length - 1];
    return t1 > t0 ? ((b1 - b0) * 1000) / (t1 - t0) : 0;
  }
}

export async function createUpload(file, metadata, handlers) {
  const tus = await loadTus();
  if (tus?.isSupported) return tusUpload(tus, file, metadata, handlers);
  return multipartUpload(file, metadata, handlers);
}

async function tusUpload(tus, file, metadata, { onProgress, onSuccess, onError, onVideoId, onResumed }) {
  let videoId = null;
  const upload = new tus.Upload(file, {
    endpoint: '/api/uploads',
    chunkSize: CHUNK_SIZE,
    retryDelays: [0, 1000, 3000, 5000, 10000, 20000],
    metadata: { filename: file.name, filetype: file.type || 'application/octet-stream', ...metadata },
    storeFingerprintForResuming: true,
    removeFingerprintOnSuccess: true,
    onBeforeRequest(req) {
      // The session cookie authenticates; the CSRF header proves the page sent it.
      const token = cookie('rh_csrf');
      if (token) req.setHeader('X-CSRF-Token', token);
    },
    onAfterResponse(_req, res) {
      const id = res.getHeader('Video-Id');
      if (id && id !== videoId) {
        videoId = id;
        onVideoId?.(id);
      }
      if (upload.url && videoId) rememberVideo(upload.url, videoId);
    },
    onShouldRetry(err, _attempt, options) {
      const status = err.originalResponse ? err.originalResponse.getStatus() : 0;
      if (status === 401) { refreshSession(); return true; }
      // 409 (offset mismatch) and 423 (locked) are resolved by a HEAD and a retry;
      // other 4xx are final (tus-js-client's own rule).
      if (status >= 400 && status < 500 && status !== 409 && status !== 423) return false;
      return options.retryDelays != null;
    },
    onProgress(sent, total) { onProgress?.(sent, total); },
    onSuccess() {
      const id = videoId || videoFor(upload.url);
      forget(upload.url);
      onSuccess?.(id);
    },
    onError(err) {
      const response = err.originalResponse;
      let detail = err.message;
      try {
        const body = JSON.parse(response?.getBody() || '');
        detail = body.detail || detail;
      } catch { /* not problem+json */ }
      onError?.(Object.assign(new Error(detail), { detail, status: response?.getStatus?.() }));
    },
  });
  const previous = await upload.findPreviousUploads();
  return {
    kind: 'tus',
    previous: previous[0] || null,
    start(resume = true) {
      if (resume && previous.length) {
        upload.resumeFromPreviousUpload(previous[0]);
        videoId = videoFor(previous[0].uploadUrl);
        if (videoId) onVideoId?.(videoId);
        onResumed?.(previous[0]);
      }
      upload.start();
    },
    pause() { return upload.abort(false); },
    resume() { upload.start(); },
    async cancel() { await upload.abort(true).catch(() => {}); forget(upload.url); },
    get url() { return upload.url; },
  };
}

function multipartUpload(file, metadata, { onProgress, onSuccess, onError, onVideoId }) {
  let xhr = null;
  const send = () => {
    const form = new FormData();
    for (const [key, value] of Object.entries(metadata)) form.append(key, value);
    form.append('file', file, file.name);
    xhr = new XMLHttpRequest();
    xhr.open('POST', '/api/videos/upload');
    const token = cookie('rh_csrf');
    if (token) xhr.setRequestHeader('X-CSRF-Token', token);
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.upload.addEventListener('progress', (e) => onProgress?.(e.loaded, e.total || file.size));
    xhr.addEventListener('load', () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { /* empty */ }
      if (xhr.status >= 200 && xhr.status < 300 && body?.id) {
        onVideoId?.(body.id);
        onSuccess?.(body.id);
      } else {
        const detail = body?.detail || `upload failed (${xhr.status})`;
        onError?.(Object.assign(new Error(detail), { detail, errors: body?.errors, status: xhr.status }));
      }
    });
    xhr.addEventListener('error', () => onError?.(Object.assign(new Error('network error'), { detail: 'The connection failed during the upload.' })));
    xhr.send(form);
  };
  return {
    kind: 'multipart',
    previous: null,
    start: send,
    pause() { xhr?.abort(); },
    resume: send, // a plain POST cannot continue: it starts over
    cancel() { xhr?.abort(); },
    url: null,
  };
}
