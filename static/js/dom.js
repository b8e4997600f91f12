// Tiny DOM helpers. Elements are built with createElement (never innerHTML with data), so
// titles and comments cannot inject markup, and styles go through classes or CSSOM only
// (the Content-Security-Policy forbids inline style attributes).

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key in el && typeof value !== 'string') el[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '';
  const s = Math.max(0, Math.round(seconds));
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const secs = String(s % 60).padStart(2, '0');
  return hours ? `${hours}:${String(minutes).padStart(2, '0')}:${secs}` : `${minutes}:${secs}`;
}

export function formatCount(n, word) {
  const value = Number(n || 0);
  const short = value >= 1e6 ? `${(value / 1e6).toFixed(1)}M`
    : value >= 1e4 ? `${Math.round(value / 1e3)}K` : value.toLocaleString('en');
  return `${short} ${word}${value === 1 ? '' : 's'}`;
}

export function formatBytes(bytes) {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = Number(bytes || 0);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return `${value.toFixed(value >= 100 || unit === 0 ? 0 : 1)} ${units[unit]}`;
}

export function timeAgo(iso) {
  if (!iso) return '';
  const then = Date.parse(iso.endsWith('Z') || iso.includes('+') ? iso : `${iso}Z`);
  if (Number.isNaN(then)) return '';
  const seconds = Math.max(0, (Date.now() - then) / 1000);
  const steps = [[60, 'second'], [60, 'minute'], [24, 'hour'], [30, 'day'], [12, 'month']];
  let value = seconds;
  for (const [size, name] of steps) {
    if (value < size) return `${Math.floor(value)} ${name}${Math.floor(value) === 1 ? '' : 's'} ago`;
    value /= size;
  }
  return `${Math.floor(value)} year${Math.floor(value) === 1 ? '' : 's'} ago`;
}

export function toast(message, kind = 'info') {
  const box = document.getElementById('toasts');
  if (!box) return;
  const item = h('div', { class: `toast toast-${kind}`, text: message });
  box.append(item);
  setTimeout(() => item.remove(), 5000);
}

// Shows an API error (problem+json detail and per-field errors) inside a form or page.
export function errorBox(error) {
  const box = h('div', { class: 'error', role: 'alert' }, error?.detail || error?.message || String(error));
  if (error?.errors?.length) {
    box.append(h('ul', {}, error.errors.map((e) => h('li', {}, e.field ? `${e.field}: ${e.message}` : e.message))));
  }
  return box;
}

// Every form submits the same way: the button is disabled while the request runs, and a
// failure shows the API's problem detail in the form's status box.
export function handleSubmit(form, submit, status, action) {
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clear(status);
    submit.disabled = true;
    try {
      await action();
    } catch (err) {
      clear(status, errorBox(err));
    } finally {
      submit.disabled = false;
    }
  });
}

export function field(label, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  return h('div', { class: 'field' },
    h('label', { for: id, text: label }), input,
    hint ? h('small', { class: 'muted', text: hint }) : null);
}
