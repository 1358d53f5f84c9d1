// TodoMVC (github.com/tastejs/todomvc, app-spec.md) on the component's JSON API. The server
// holds the todos; this page keeps a copy, changes it from each answer, and re-reads the whole
// list after any failure so that what it shows is what is stored.

import { api } from './api.js';

const el = {
  newTodo: document.querySelector('.new-todo'),
  error: document.querySelector('.error'),
  main: document.querySelector('.main'),
  toggleAll: document.querySelector('.toggle-all'),
  list: document.querySelector('.todo-list'),
  footer: document.querySelector('.footer'),
  count: document.querySelector('.todo-count'),
  filters: document.querySelector('.filters'),
  clearCompleted: document.querySelector('.clear-completed'),
};

const state = {
  /** @type {{id: number, title: string, completed: boolean}[]} in the server's order */
  todos: [],
  filter: 'all',
  /** The id of the todo being edited, and the text typed so far (kept across renders). */
  editing: null,
  draft: '',
};

const FILTERS = {
  all: () => true,
  active: (todo) => !todo.completed,
  completed: (todo) => todo.completed,
};

function filterFromHash() {
  const name = location.hash.replace(/^#\//, '');
  return name in FILTERS ? name : 'all';
}

/** Runs one API call; on failure shows why and re-reads the list, which may have changed. */
async function run(action) {
  try {
    await action();
    showError(null);
  } catch (e) {
    showError(e.message);
    await reload();
  }
  render();
}

async function reload() {
  try {
    state.todos = await api.list();
  } catch (e) {
    showError(e.message);
  }
}

function showError(message) {
  el.error.hidden = !message;
  el.error.textContent = message || '';
}

function replace(todo) {
  state.todos = state.todos.map((t) => (t.id === todo.id ? todo : t));
}

function forget(id) {
  state.todos = state.todos.filter((t) => t.id !== id);
}

function startEditing(todo) {
  state.editing = todo.id;
  state.draft = todo.title;
  render();
}

/** Enter and leaving the field save; an emptied title deletes the todo (app spec). */
function finishEditing(todo) {
  if (state.editing !== todo.id) return;
  const title = state.draft.trim();
  state.editing = null;
  if (!title) {
    run(async () => {
      await api.remove(todo.id);
      forget(todo.id);
    });
  } else if (title !== todo.title) {
    run(async () => replace(await api.update(todo.id, { title })));
  } else {
    render();
  }
}

function cancelEditing() {
  state.editing = null;
  render();
}

function item(todo) {
  const li = document.createElement('li');
  li.dataset.id = String(todo.id);
  li.classList.toggle('completed', todo.completed);
  li.classList.toggle('editing', state.editing === todo.id);

  const view = document.createElement('div');
  view.className = 'view';
  const toggle = document.createElement('input');
  toggle.className = 'toggle';
  toggle.type = 'checkbox';
  toggle.checked = todo.completed;
  toggle.addEventListener('change', () =>
    run(async () => replace(await api.update(todo.id, { completed: toggle.checked }))),
  );
  const label = document.createElement('label');
  label.textContent = todo.title;
  label.addEventListener('dblclick', () => startEditing(todo));
  const destroy = document.createElement('button');
  destroy.className = 'destroy';
  destroy.setAttribute('aria-label', `Delete ${todo.title}`);
  destroy.addEventListener('click', () =>
    run(async () => {
      await api.remove(todo.id);
      forget(todo.id);
    }),
  );
  view.append(toggle, label, destroy);
  li.append(view);

  if (state.editing === todo.id) {
    const edit = document.createElement('input');
    edit.className = 'edit';
    edit.value = state.draft;
    edit.setAttribute('aria-label', 'Edit todo');
    edit.addEventListener('input', () => {
      state.draft = edit.value;
    });
    edit.addEventListener('keydown', (event) => {
      if (event.key === 'Enter') finishEditing(todo);
      else if (event.key === 'Escape') cancelEditing();
    });
    edit.addEventListener('blur', () => finishEditing(todo));
    li.append(edit);
  }
  return li;
}

function render() {
  const { todos } = state;
  const active = todos.filter(FILTERS.active).length;
  const completed = todos.length - active;

  el.main.hidden = todos.length === 0;
  el.footer.hidden = todos.length === 0;
  el.toggleAll.checked = todos.length > 0 && active === 0;

  const strong = document.createElement('strong');
  strong.textContent = String(active);
  el.count.replaceChildren(strong, ` ${active === 1 ? 'item' : 'items'} left`);
  el.clearCompleted.hidden = completed === 0;
  for (const link of el.filters.querySelectorAll('a')) {
    link.classList.toggle('selected', link.dataset.filter === state.filter);
  }

  el.list.replaceChildren(...todos.filter(FILTERS[state.filter]).map(item));
  const edit = el.list.querySelector('.edit');
  if (edit && document.activeElement !== edit) {
    edit.focus();
    edit.setSelectionRange(edit.value.length, edit.value.length);
  }
}

el.newTodo.addEventListener('keydown', (event) => {
  if (event.key !== 'Enter') return;
  const title = el.newTodo.value.trim();
  if (!title) return;
  el.newTodo.value = '';
  run(async () => {
    state.todos.push(await api.add(title));
  });
});

el.toggleAll.addEventListener('change', () => {
  const completed = el.toggleAll.checked;
  run(async () => {
    state.todos = await api.setAllCompleted(completed);
  });
});

el.clearCompleted.addEventListener('click', () =>
  run(async () => {
    state.todos = await api.clearCompleted();
  }),
);

window.addEventListener('hashchange', () => {
  state.filter = filterFromHash();
  render();
});

state.filter = filterFromHash();
reload().then(render);
