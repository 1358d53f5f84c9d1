// The component's JSON API (examples/todomvc/src/api.rs): every call resolves to the parsed
// JSON answer, or rejects with an ApiError carrying the message the component sent.

const BASE = '/api/todos';

/** A failed API call: `message` is the component's own `error` text when it sent one. */
export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

async function call(method, path, body) {
  const init = { method, headers: { accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(BASE + path, init);
  } catch (e) {
    throw new ApiError(`cannot reach the server (${e.message})`, 0);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    // Not JSON: a proxy's or the host's own error page. The status says enough.
  }
  if (!response.ok) {
    const reason = data && typeof data.error === 'string' ? data.error : response.statusText;
    throw new ApiError(`${method} ${BASE}${path}: ${response.status} ${reason}`, response.status);
  }
  return data;
}

export const api = {
  list: () => call('GET', ''),
  add: (title) => call('POST', '', { title }),
  update: (id, changes) => call('PATCH', `/${id}`, changes),
  remove: (id) => call('DELETE', `/${id}`),
  setAllCompleted: (completed) => call('PATCH', '', { completed }),
  clearCompleted: () => call('DELETE', '?completed=true'),
};
