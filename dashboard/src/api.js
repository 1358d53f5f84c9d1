// Talking to the dashboard's read-only API (crates/dashboard): the token, the snapshot and
// the event stream. Nothing here changes the lattice.

const TOKEN_KEY = 'trellis-dashboard-token';

/**
 * The API's bearer token. `trellis up` and `trellis dashboard` print the page's address as
 * `http://…/#token=TOKEN`: a fragment never reaches a server or a Referer header. The page
 * keeps it for this tab in sessionStorage and takes it out of the address bar, so a copied
 * address or a screenshot does not carry it.
 */
export function takeToken() {
  const match = /(?:^#|&)token=([^&]*)/.exec(window.location.hash);
  if (match) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
    history.replaceState(null, '', window.location.pathname + window.location.search);
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

/** Why a request to the API failed, with whether a token would help. */
export class ApiError extends Error {
  constructor(message, unauthorized = false) {
    super(message);
    this.unauthorized = unauthorized;
  }
}

async function get(path, token, init = {}) {
  let response;
  try {
    response = await fetch(path, {
      ...init,
      headers: { Authorization: `Bearer ${token ?? ''}` },
      cache: 'no-store',
    });
  } catch (e) {
    throw new ApiError(`cannot reach the dashboard server (${e.message}); has it stopped?`);
  }
  if (response.status === 401) {
    throw new ApiError(
      'the dashboard needs its token: open the address that `trellis up` or `trellis dashboard` printed (it ends in #token=…)',
      true,
    );
  }
  if (!response.ok) {
    const text = (await response.text()).trim();
    throw new ApiError(`${path} answered ${response.status}: ${text}`);
  }
  return response;
}

/** The lattice as the server sees it now (see crates/dashboard/src/snapshot.rs). */
export async function snapshot(token) {
  return (await get('/api/snapshot', token)).json();
}

/**
 * Calls `onEvent` with every CloudEvent from now on, read from the newline-delimited JSON
 * of `/api/events` as it streams. Resolves when the stream ends (the server stopped);
 * `signal` aborts it.
 */
export async function followEvents(token, onEvent, signal) {
  const response = await get('/api/events', token, { signal });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let newline;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, newline).trim();
      buffer = buffer.slice(newline + 1);
      if (line) {
        try {
          onEvent(JSON.parse(line));
        } catch {
          // A line that is not JSON is a server bug; the next one may be fine.
        }
      }
    }
  }
}

/**
 * Requests per second and errors per second of each component, from two successive
 * `trellis.stats` answers of one host: counters only grow, so a rate is their difference
 * over the time between the answers. Returns a map component id → { rate, errorRate,
 * errors, inUse }, with rates null until there are two answers.
 */
export function componentRates(previous, current) {
  const rates = new Map();
  if (!current) return rates;
  const before = new Map((previous?.components ?? []).map((c) => [c.component_id, c]));
  const seconds = previous ? (current.at_ms - previous.at_ms) / 1000 : 0;
  for (const c of current.components ?? []) {
    const handled = total(c);
    const old = before.get(c.component_id);
    // A host that restarted starts again from zero: no rate rather than a negative one.
    const usable = old && seconds > 0 && handled >= total(old) && c.errors >= old.errors;
    rates.set(c.component_id, {
      rate: usable ? (handled - total(old)) / seconds : null,
      errorRate: usable ? (c.errors - old.errors) / seconds : null,
      errors: c.errors ?? 0,
      inUse: c.instances_in_use ?? 0,
      queued: c.queued ?? 0,
    });
  }
  return rates;
}

function total(c) {
  const http = Object.values(c.requests ?? {}).reduce((sum, n) => sum + n, 0);
  return http + (c.invocations ?? 0);
}
