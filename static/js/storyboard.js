// Seek-bar previews from the pipeline's storyboard: a WebVTT file whose cues point at
// regions of sprite sheets with Media Fragments (`sprite_000.jpg#xywh=x,y,w,h`, W3C Media
// Fragments URI 1.0 section 4.2.1).

function seconds(stamp) {
  const parts = stamp.trim().split(':').map(Number);
  return parts.reduce((total, part) => total * 60 + part, 0);
}

export function parseStoryboard(text, baseUrl) {
  const cues = [];
  const blocks = text.replace(/\r\n?/g, '\n').split(/\n\n+/);
  for (const block of blocks) {
    const lines = block.split('\n').filter(Boolean);
    const timing = lines.findIndex((line) => line.includes('-->'));
    if (timing < 0 || !lines[timing + 1]) continue;
    const [start, end] = lines[timing].split('-->').map((s) => seconds(s.split(' ').filter(Boolean)[0] || s));
    const ref = lines[timing + 1].trim();
    const [path, fragment = ''] = ref.split('#');
    const match = fragment.match(/xywh=(?:pixel:)?(\d+),(\d+),(\d+),(\d+)/);
    if (!match) continue;
    const [x, y, w, h] = match.slice(1).map(Number);
    cues.push({ start, end, url: new URL(path, baseUrl).href, x, y, w, h });
  }
  return cues;
}

export async function loadStoryboard(url) {
  const absolute = new URL(url, location.href).href;
  const resp = await fetch(absolute, { credentials: 'same-origin' });
  if (!resp.ok) return [];
  return parseStoryboard(await resp.text(), absolute);
}

export function cueAt(cues, time) {
  let lo = 0;
  let hi = cues.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (time < cues[mid].start) hi = mid - 1;
    else if (time >= cues[mid].end) lo = mid + 1;
    else return cues[mid];
  }
  return cues[Math.min(Math.max(hi, 0), cues.length - 1)] || null;
}
