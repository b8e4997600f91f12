// Optional browser libraries served from node_modules at /static/vendor. Each loader
// resolves to null when the file is absent, and the caller falls back (native HLS or
// progressive MP4 for playback, multipart POST for uploads).

let hlsPromise = null;
let tusPromise = null;

export function loadHls() {
  if (!hlsPromise) {
    hlsPromise = import('/static/vendor/hls.mjs').then((mod) => mod.default || null).catch(() => null);
  }
  return hlsPromise;
}

export function loadTus() {
  if (!tusPromise) {
    // A UMD bundle: as a classic script it defines window.tus.
    tusPromise = new Promise((resolve) => {
      if (window.tus) { resolve(window.tus); return; }
      const script = document.createElement('script');
      script.src = '/static/vendor/tus.js';
      script.async = true;
      script.onload = () => resolve(window.tus || null);
      script.onerror = () => resolve(null);
      document.head.append(script);
    });
  }
  return tusPromise;
}

// Safari plays HLS natively and well; Chromium claims it can ("maybe") but stalls on
// fMP4 playlists, so canPlayType alone must not decide.
export function isSafari() {
  const ua = navigator.userAgent;
  return /Safari\//.test(ua) && !/Chrome\/|Chromium\/|CriOS\/|Android|Edg\//.test(ua);
}
