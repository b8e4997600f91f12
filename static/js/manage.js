// The owner's tools on the watch page: edit title, description, privacy and options,
// process the video again, or delete it (its files go too).
import { api } from './api.js';
import { clear, errorBox, field, h } from './dom.js';
import { reprocess } from './processing.js';

export function manageButton(video, { onSaved, onDeleted, onReprocessed }) {
  const panel = h('div', { class: 'manage', hidden: true, id: 'manage-panel' });
  const toggle = h('button', { type: 'button', class: 'btn btn-ghost', id: 'edit-video', 'aria-expanded': 'false', 'aria-controls': 'manage-panel', text: 'Edit' });
  toggle.addEventListener('click', () => {
    panel.hidden = !panel.hidden;
    toggle.setAttribute('aria-expanded', String(!panel.hidden));
    if (!panel.hidden) render();
  });

  function render() {
    const title = h('input', { type: 'text', value: video.title, maxlength: '200', required: true, id: 'edit-title' });
    const description = h('textarea', { rows: '4', maxlength: '10000', id: 'edit-description' });
    description.value = video.description || '';
    const privacy = h('select', { id: 'edit-privacy' }, ['public', 'unlisted', 'private']
      .map((p) => h('option', { value: p, text: p[0].toUpperCase() + p.slice(1), selected: p === video.privacy })));
    const comments = h('input', { type: 'checkbox', id: 'edit-comments', checked: video.comments_enabled !== false });
    const download = h('input', { type: 'checkbox', id: 'edit-download', checked: Boolean(video.allow_download) });
    const status = h('div');
    const save = h('button', { type: 'submit', class: 'btn btn-primary', text: 'Save' });
    const remove = h('button', { type: 'button', class: 'btn btn-ghost danger', text: 'Delete video' });
    // A ready video plays its current version until the new one is complete.
    const again = h('button', { type: 'button', class: 'btn btn-ghost', id: 'manage-process-again', text: 'Process again',
      disabled: video.processing_again || !['ready', 'failed'].includes(video.status),
      title: 'Make the renditions again from the original file' });
    const form = h('form', { class: 'card-form' },
      field('Title', title), field('Description', description), field('Privacy', privacy),
      h('div', { class: 'check' }, comments, h('label', { for: comments.id, text: 'Allow comments' })),
      h('div', { class: 'check' }, download, h('label', { for: download.id, text: 'Allow downloading the original file' })),
      status, h('div', { class: 'row-end' }, remove, again, save));
    again.addEventListener('click', async () => {
      clear(status);
      again.disabled = true;
      try {
        const updated = await reprocess(video.id);
        Object.assign(video, updated);
        clear(status, h('p', { class: 'muted', id: 'reprocess-note', text: updated.status === 'ready'
          ? 'Processing again. The current version plays until the new one is ready.'
          : 'Processing again.' }));
        onReprocessed?.(updated);
      } catch (err) { again.disabled = false; clear(status, errorBox(err)); }
    });
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      clear(status);
      try {
        const updated = await api(`/api/videos/${video.id}`, {
          method: 'PATCH',
          body: { title: title.value.trim(), description: description.value, privacy: privacy.value, comments_enabled: comments.checked, allow_download: download.checked },
        });
        Object.assign(video, updated);
        panel.hidden = true;
        toggle.setAttribute('aria-expanded', 'false');
        onSaved?.(updated);
      } catch (err) { clear(status, errorBox(err)); }
    });
    remove.addEventListener('click', async () => {
      // eslint-disable-next-line no-alert
      if (!window.confirm(`Delete "${video.title}" for good?`)) return;
      try {
        await api(`/api/videos/${video.id}`, { method: 'DELETE' });
        onDeleted?.();
      } catch (err) { clear(status, errorBox(err)); }
    });
    clear(panel, form);
  }
  return { toggle, panel };
}
