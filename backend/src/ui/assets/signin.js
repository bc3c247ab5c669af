// The sign-in form shown when the backend wants a query token, and the
// sign-out button in the header. The token goes to sessionStorage only
// (api.js); the form is never submitted to the server, so it cannot end up
// in a URL.

import { queryToken, setQueryToken } from './api.js';
import { h, message } from './router.js';

/** Draws the form into `main`; `refused` says the last token was wrong. */
export function render(main, refused, signedIn) {
  const input = h('input', {
    type: 'password', name: 'token', autocomplete: 'off', spellcheck: 'false',
    placeholder: 'query token', 'aria-label': 'query token', required: '',
  });
  const form = h('form', { id: 'sign-in', class: 'sign-in', method: 'post', action: '#' },
    h('p', {}, 'This otelite asks for its query token (the --query-token it was started with) ',
      'before it shows any trace. It is kept in this tab until you sign out or close it.'),
    h('div', { class: 'sign-in-row' }, input, h('button', { type: 'submit' }, 'Sign in')));
  if (refused) {
    form.prepend(h('p', { class: 'sign-in-error', role: 'alert' },
      'That token was refused: the backend answered 401. Check it and try again.'));
  }
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const token = input.value.trim();
    if (!token) return;
    setQueryToken(token);
    signedIn();
  });
  main.replaceChildren(message('info', 'Sign in', form));
  input.focus();
}

/** Shows the header's sign-out button while this tab holds a token. */
export function wireSignOut(signedOut) {
  const button = document.getElementById('sign-out');
  const update = () => { button.hidden = !queryToken(); };
  button.addEventListener('click', () => {
    setQueryToken(null);
    update();
    signedOut();
  });
  update();
  return update;
}
