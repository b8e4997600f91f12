// The live connection: one WebSocket to /api/ws (cookie-authenticated) shared by every
// page. It resumes notifications after the last id seen, re-subscribes topics after a
// reconnect, and backs off exponentially while the server is away.

import { refreshSession } from './api.js';

const LAST_ID_KEY = 'rh.lastNotificationId';
const MAX_DELAY = 30000;

class Live {
  constructor() {
    this.ws = null;
    this.handlers = new Set();
    this.topics = new Map(); // topic -> reference count
    this.delay = 1000;
    this.wanted = false;
    this.timer = null;
    this.key = LAST_ID_KEY;
    this.lastId = 0;
    this.replaying = false;
  }

  // The last notification id seen is kept per user, so that switching accounts in one
  // browser neither skips nor replays another person's inbox.
  start(userId) {
    this.key = `${LAST_ID_KEY}.${userId ?? 'anon'}`;
    this.lastId = Number(localStorage.getItem(this.key) || 0);
    this.wanted = true;
    if (!this.ws) this.connect();
  }

  stop() {
    this.wanted = false;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000, 'signed out');
    this.ws = null;
  }

  restart(userId) {
    this.stop();
    this.start(userId);
  }

  get connected() {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  connect() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${scheme}//${location.host}/api/ws`);
    let opened = false;
    this.ws = ws;
    ws.addEventListener('open', () => {
      opened = true;
      this.delay = 1000;
      this.replaying = true;
      this.send({ type: 'resume', last_id: this.lastId });
      for (const topic of this.topics.keys()) this.send({ type: 'subscribe', topic });
      this.emit({ type: 'live.open' });
    });
    ws.addEventListener('message', (event) => {
      let message;
      try { message = JSON.parse(event.data); } catch { return; }
      if (message.type === 'resumed') this.replaying = false;
      const note = notificationOf(message);
      if (note && Number(note.id) > this.lastId) {
        this.lastId = Number(note.id);
        localStorage.setItem(this.key, String(this.lastId));
      }
      this.emit({ ...message, replayed: Boolean(note) && this.replaying });
    });
    ws.addEventListener('close', (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.emit({ type: 'live.closed', code: event.code, reason: event.reason });
      if (!this.wanted) return;
      // 1008: the user has as many live connections open as the server allows (other
      // tabs): try again only after the longest wait.
      if (event.code === 1008) this.delay = MAX_DELAY;
      // Refused before opening: most likely an expired access cookie; renew it first.
      const renew = opened ? Promise.resolve() : refreshSession();
      renew.finally(() => { this.timer = setTimeout(() => this.connect(), this.delay); });
      this.delay = Math.min(this.delay * 2, MAX_DELAY);
    });
  }

  send(message) {
    if (this.connected) this.ws.send(JSON.stringify(message));
  }

  subscribe(topic) {
    const count = this.topics.get(topic) || 0;
    this.topics.set(topic, count + 1);
    if (!count) this.send({ type: 'subscribe', topic });
    return () => this.unsubscribe(topic);
  }

  unsubscribe(topic) {
    const count = (this.topics.get(topic) || 0) - 1;
    if (count > 0) { this.topics.set(topic, count); return; }
    this.topics.delete(topic);
    this.send({ type: 'unsubscribe', topic });
  }

  on(fn) {
    this.handlers.add(fn);
    return () => this.handlers.delete(fn);
  }

  emit(message) {
    for (const fn of [...this.handlers]) {
      try { fn(message); } catch (err) { console.error(err); }
    }
  }
}

// Notifications arrive either as the notification itself or wrapped in an envelope.
export function notificationOf(message) {
  if (!message || typeof message !== 'object') return null;
  if (message.notification && typeof message.notification === 'object') return message.notification;
  if (message.type === 'notification') return message.data && typeof message.data === 'object' ? message.data : message;
  if (message.kind && message.id !== undefined && !String(message.type || '').startsWith('video.')) return message;
  return null;
}

export const live = new Live();
