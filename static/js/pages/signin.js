import { signIn } from '../api.js';
import { clear, field, h, handleSubmit } from '../dom.js';

export function nextPath() {
  const next = new URLSearchParams(location.search).get('next') || '/';
  return next.startsWith('/') && !next.startsWith('//') ? next : '/';
}

export default async function signin(main, _params, { navigate }) {
  document.title = 'Sign in · Reelhouse';
  const username = h('input', { type: 'text', name: 'username', id: 'username', autocomplete: 'username', required: true });
  const password = h('input', { type: 'password', name: 'password', id: 'password', autocomplete: 'current-password', required: true });
  const status = h('div');
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', text: 'Sign in' });
  const form = h('form', { class: 'card-form', id: 'signin-form' },
    h('h1', { text: 'Sign in' }), field('Username', username), field('Password', password), status,
    h('div', { class: 'row-end' }, submit),
    h('p', { class: 'muted' }, 'New here? ', h('a', { href: '/signup', text: 'Create an account' })));
  handleSubmit(form, submit, status, async () => {
    await signIn(username.value.trim(), password.value);
    navigate(nextPath(), { replace: true });
  });
  clear(main, h('section', { class: 'narrow' }, form));
  username.focus();
}
