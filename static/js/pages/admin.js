import { api, items, session } from '../api.js';
import { clear, errorBox, formatBytes, h, timeAgo, toast } from '../dom.js';
import { requireSignIn } from '../components.js';

export default async function admin(main) {
  document.title = 'Admin · Reelhouse';
  if (!session.user) return requireSignIn(main, 'administer this server');
  if (!session.user.is_admin) {
    clear(main, h('h1', { text: 'Admin' }), errorBox({ detail: 'Only an administrator may see this page.' }));
    return undefined;
  }
  const registration = h('input', { type: 'checkbox', id: 'open-registration' });
  const regStatus = h('span', { class: 'muted' });
  const settings = h('section', { class: 'card-form' }, h('h2', { text: 'Registration' }),
    h('div', { class: 'check' }, registration, h('label', { for: 'open-registration', text: 'Anyone may create an account' })), regStatus);
  try {
    registration.checked = Boolean((await api('/api/admin/settings')).open_registration);
  } catch (err) { settings.append(errorBox(err)); }
  registration.addEventListener('change', async () => {
    try {
      const result = await api('/api/admin/settings', { method: 'PATCH', body: { open_registration: registration.checked } });
      registration.checked = result.open_registration;
      regStatus.textContent = result.open_registration ? 'Registration is open.' : 'Registration is closed.';
    } catch (err) {
      registration.checked = !registration.checked;
      toast(err.detail, 'error');
    }
  });

  const storage = h('section', { class: 'card-form', id: 'admin-storage' }, h('h2', { text: 'Storage' }));
  try {
    const disk = await api('/api/admin/storage');
    storage.append(
      h('p', { id: 'disk-free', text: `${formatBytes(disk.free_bytes)} free of ${formatBytes(disk.total_bytes)}` }),
      h('p', { class: 'muted', id: 'disk-floor', text: `Always kept free (uploads and processing stop short of it): ${formatBytes(disk.min_free_disk_bytes)}` }));
    if (!disk.floor_met || disk.jobs_waiting_for_space) {
      storage.append(h('p', { class: 'error-text', id: 'disk-waiting', text: `Processing waits for disk space (${disk.jobs_waiting_for_space} waiting).` }));
    }
  } catch (err) { storage.append(errorBox(err)); }

  const reprocessStatus = h('span', { class: 'muted', id: 'reprocess-status' });
  const reprocessAll = h('button', { type: 'button', class: 'btn btn-ghost', id: 'reprocess-failed', text: 'Process every failed video again' });
  reprocessAll.addEventListener('click', async () => {
    reprocessAll.disabled = true;
    try {
      const result = await api('/api/admin/reprocess-failed', { method: 'POST' });
      reprocessStatus.textContent = `${result.queued} queued` + (result.skipped ? `, ${result.skipped} skipped (original gone or already processing)` : '') + '.';
    } catch (err) { toast(err.detail, 'error'); } finally { reprocessAll.disabled = false; }
  });
  const processing = h('section', { class: 'card-form', id: 'admin-processing' }, h('h2', { text: 'Processing' }),
    h('div', { class: 'row-end' }, reprocessStatus, reprocessAll));

  const table = h('table', { class: 'table', id: 'admin-users' },
    h('thead', {}, h('tr', {}, ['User', 'Joined', 'Role', 'State', ''].map((t) => h('th', { scope: 'col', text: t })))));
  const tbody = h('tbody');
  table.append(tbody);
  const users = h('section', { class: 'card-form' }, h('h2', { text: 'Users' }), h('div', { class: 'table-wrap' }, table));
  try {
    for (const user of items(await api('/api/admin/users')).items) {
      const state = h('td', { text: user.disabled ? 'disabled' : 'active' });
      const button = h('button', { type: 'button', class: 'btn btn-ghost', text: user.disabled ? 'Enable' : 'Disable', disabled: user.id === session.user.id });
      button.addEventListener('click', async () => {
        try {
          const updated = await api(`/api/admin/users/${user.id}`, { method: 'PATCH', body: { disabled: !user.disabled } });
          user.disabled = updated.disabled;
          state.textContent = user.disabled ? 'disabled' : 'active';
          button.textContent = user.disabled ? 'Enable' : 'Disable';
        } catch (err) { toast(err.detail, 'error'); }
      });
      tbody.append(h('tr', { dataset: { userId: user.id } },
        h('td', {}, h('strong', { text: user.username }), user.display_name && user.display_name !== user.username ? ` (${user.display_name})` : ''),
        h('td', { text: timeAgo(user.created_at) }), h('td', { text: user.is_admin ? 'admin' : 'member' }), state, h('td', {}, button)));
    }
  } catch (err) { users.append(errorBox(err)); }
  clear(main, h('h1', { text: 'Administration' }), settings, storage, processing, users);
}
