// Entry point: the header (navigation and the trace-id box) and the page
// chosen by the URL's hash. Each page module exports `render(main, route)`.

import { UNAUTHORIZED } from './api.js';
import { currentRoute, go, h, message, TRACE_ID } from './router.js';
import * as signIn from './signin.js';
import * as search from './search.js';
import * as trace from './trace.js';
import * as rates from './rates.js';
import * as graph from './graph.js';

const PAGES = { search, trace, rates, graph };
let generation = 0;

async function show() {
  const route = currentRoute();
  const main = document.getElementById('page');
  for (const link of document.querySelectorAll('.top nav a')) {
    link.classList.toggle('active', link.dataset.page === route.page);
  }
  const page = PAGES[route.page];
  main.replaceChildren();
  if (!page) {
    main.append(message('error', 'No such page', `"${route.page}" is not a page of this UI; `,
      h('a', { href: '#/search' }, 'search traces'), '.'));
    return;
  }
  // A page left before its data arrived must not draw over the next one.
  const mine = ++generation;
  const stillCurrent = () => mine === generation;
  // data-route and data-state let a test (or a person) see when a view is drawn.
  main.dataset.page = route.page;
  main.dataset.route = location.hash;
  main.dataset.state = 'loading';
  try {
    await page.render(main, route, stillCurrent);
  } finally {
    if (stillCurrent()) main.dataset.state = 'ready';
  }
}

/** A trace id typed (or pasted) into the header box opens that trace from any page. */
function wireTraceJump() {
  const form = document.getElementById('trace-jump');
  const error = form.querySelector('.jump-error');
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const id = form.elements.id.value.trim().replace(/^0x/i, '');
    if (!TRACE_ID.test(id)) {
      error.textContent = 'a trace id is 32 hex digits';
      return;
    }
    error.textContent = '';
    form.elements.id.value = '';
    go('trace', id.toLowerCase());
  });
}

/**
 * A 401 from any API call replaces the page with the sign-in form; the
 * page's own drawing is dropped (its generation is no longer current).
 */
function wireSignIn() {
  const updateSignOut = signIn.wireSignOut(show);
  window.addEventListener(UNAUTHORIZED, (event) => {
    generation += 1;
    updateSignOut();
    const main = document.getElementById('page');
    main.dataset.page = 'sign-in';
    main.dataset.route = location.hash;
    signIn.render(main, event.detail.refused, () => {
      updateSignOut();
      show();
    });
    main.dataset.state = 'sign-in';
  });
}

wireTraceJump();
wireSignIn();
window.addEventListener('hashchange', show);
show();
