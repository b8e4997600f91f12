// Threaded comments: top-level comments with their replies, a reply form under each.
import { api, items, query, session } from './api.js';
import { clear, errorBox, h, handleSubmit, timeAgo, toast } from './dom.js';

function authorName(comment) {
  const a = comment.author;
  if (!a) return comment.deleted ? '' : 'someone';
  return typeof a === 'string' ? a : a.display_name || a.username || 'someone';
}

function commentForm(videoId, parentId, onPosted, { autofocus = false } = {}) {
  const text = h('textarea', {
    name: 'body', rows: parentId ? '2' : '3', required: true, maxlength: '10000',
    placeholder: parentId ? 'Write a reply…' : 'Add a comment…',
    'aria-label': parentId ? 'Reply' : 'Comment',
    class: parentId ? 'reply-input' : 'comment-input',
  });
  const status = h('div');
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', text: parentId ? 'Reply' : 'Comment' });
  const form = h('form', { class: 'comment-form' }, text, status, h('div', { class: 'row-end' }, submit));
  handleSubmit(form, submit, status, async () => {
    const body = { body: text.value };
    if (parentId) body.parent_id = parentId;
    const comment = await api(`/api/videos/${videoId}/comments`, { method: 'POST', body });
    text.value = '';
    onPosted(comment);
  });
  if (autofocus) setTimeout(() => text.focus(), 0);
  return form;
}

function commentItem(videoId, comment, { isReply = false, onReply } = {}) {
  const body = comment.deleted ? h('p', { class: 'comment-body muted', text: 'This comment was deleted.' })
    : h('p', { class: 'comment-body', text: comment.body ?? comment.text ?? '' });
  const replies = h('ul', { class: 'replies', 'aria-label': 'Replies' });
  const actions = h('div', { class: 'comment-actions' });
  const li = h('li', { class: 'comment', dataset: { commentId: comment.id } },
    h('div', { class: 'comment-head' },
      h('strong', { text: authorName(comment) }), ' ',
      h('span', { class: 'muted', text: timeAgo(comment.created_at) })),
    body, actions, replies);
  if (!isReply) {
    for (const reply of comment.replies || []) replies.append(commentItem(videoId, reply, { isReply: true }));
    const shown = (comment.replies || []).length;
    if ((comment.reply_count || 0) > shown) {
      const more = h('button', { type: 'button', class: 'linklike', text: `Show ${comment.reply_count - shown} replies` });
      more.addEventListener('click', async () => {
        try {
          const page = items(await api(`/api/videos/${videoId}/comments${query({ parent_id: comment.id, limit: 100 })}`));
          clear(replies, page.items.map((r) => commentItem(videoId, r, { isReply: true })));
          more.remove();
        } catch (err) { toast(err.detail, 'error'); }
      });
      actions.append(more);
    }
    if (session.user && !comment.deleted) {
      const replyBtn = h('button', { type: 'button', class: 'linklike reply-button', text: 'Reply' });
      replyBtn.addEventListener('click', () => {
        if (li.querySelector(':scope > .comment-form')) return;
        const form = commentForm(videoId, comment.id, (reply) => {
          replies.append(commentItem(videoId, reply, { isReply: true }));
          form.remove();
        }, { autofocus: true });
        li.insertBefore(form, replies);
      });
      actions.prepend(replyBtn);
    }
  }
  const canDelete = session.user && !comment.deleted && (comment.can_delete ?? (comment.author?.username === session.user.username));
  if (canDelete) {
    actions.append(h('button', {
      type: 'button', class: 'linklike', text: 'Delete',
      onclick: async () => {
        try {
          await api(`/api/videos/${videoId}/comments/${comment.id}`, { method: 'DELETE' });
          body.textContent = 'This comment was deleted.';
          body.classList.add('muted');
        } catch (err) { toast(err.detail, 'error'); }
      },
    }));
  }
  onReply?.(li);
  return li;
}

// Threads from either nested replies or a flat list carrying parent_id.
function threads(list) {
  if (list.some((c) => Array.isArray(c.replies)) || !list.some((c) => c.parent_id)) {
    return list.filter((c) => !c.parent_id);
  }
  const byId = new Map(list.map((c) => [c.id, { ...c, replies: [] }]));
  const roots = [];
  for (const c of byId.values()) {
    const parent = c.parent_id ? byId.get(c.parent_id) : null;
    if (parent) parent.replies.push(c);
    else roots.push(c);
  }
  return roots;
}

export function commentsSection(video) {
  const list = h('ul', { class: 'comments', id: 'comments' });
  const status = h('div');
  const more = h('button', { type: 'button', class: 'btn', hidden: true, text: 'More comments' });
  const count = h('span', { class: 'muted' });
  const section = h('section', { class: 'comments-section', 'aria-labelledby': 'comments-h' },
    h('h2', { id: 'comments-h' }, 'Comments ', count));
  if (video.comments_enabled === false) {
    section.append(h('p', { class: 'muted', text: 'Comments are turned off for this video.' }));
    return section;
  }
  if (session.user) {
    section.append(commentForm(video.id, null, (comment) => list.prepend(commentItem(video.id, comment))));
  } else {
    section.append(h('p', { class: 'muted' }, h('a', { href: `/signin?next=/watch/${video.id}`, text: 'Sign in' }), ' to comment.'));
  }
  section.append(status, list, more);
  let cursor = null;
  async function load() {
    try {
      const page = await api(`/api/videos/${video.id}/comments${query({ cursor, limit: 50 })}`);
      const { items: got, next } = items(page);
      list.append(...threads(got).map((c) => commentItem(video.id, c)));
      if (typeof page?.total === 'number') count.textContent = `(${page.total})`;
      cursor = next;
      more.hidden = !cursor;
    } catch (err) {
      clear(status, errorBox(err));
    }
  }
  more.addEventListener('click', load);
  load();
  return section;
}
