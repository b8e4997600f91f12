import { signUp } from '../api.js';
import { clear, field, h, handleSubmit } from '../dom.js';
import { nextPath } from './signin.js';

export default async function signup(main, _params, { navigate }) {
  document.title = 'Sign up · Reelhouse';
  const username = h('input', { type: 'text', name: 'username', id: 'username', autocomplete: 'username', required: true, minlength: '3', maxlength: '32' });
  const email = h('input', { type: 'email', name: 'email', id: 'email', autocomplete: 'email' });
  const password = h('input', { type: 'password', name: 'password', id: 'password', autocomplete: 'new-password', required: true, minlength: '8' });
  const status = h('div');
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', text: 'Create account' });
  const form = h('form', { class: 'card-form', id: 'signup-form' },
    h('h1', { text: 'Create an account' }),
    field('Username', username, 'Letters, digits, dot, dash or underscore; 3 to 32 characters.'),
    field('Email (optional)', email), field('Password', password, 'At least 8 characters.'), status,
    h('div', { class: 'row-end' }, submit),
    h('p', { class: 'muted' }, 'Already have an account? ', h('a', { href: '/signin', text: 'Sign in' })));
  handleSubmit(form, submit, status, async () => {
    await signUp(username.value.trim(), password.value, email.value.trim());
    navigate(nextPath(), { replace: true });
  });
  clear(main, h('section', { class: 'narrow' }, form));
  username.focus();
}
