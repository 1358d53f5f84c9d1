// TodoMVC (examples/todomvc) in a real browser, against a running `trellis up`.
//
//   URL    the app, http://127.0.0.1:PORT/
//   STEP   `fresh`: starting from no todos, add, complete, edit (and cancel an edit), delete,
//          filter, toggle all and clear completed, then reload and find the same todos;
//          `kept`: find the todos `fresh` left (after Trellis restarted);
//          `unreachable`: the store is away, and the page says why
//   LABEL  names the screenshots: todomvc-LABEL-STEP.png
//
// Run by crates/cli/tests/todomvc.rs. Prints `ok` and the final todos as JSON.
import { launch, screenshot, required, check } from './lib.mjs';

const url = required('URL');
const step = required('STEP');
const label = required('LABEL');

/** What `fresh` leaves behind, in order. */
const FINAL = [
  { title: 'Write the walkthrough', completed: false },
  { title: 'Water the plants and the garden', completed: false },
  { title: 'Book the train', completed: true },
];

/** The todos the page shows, in order. */
function shown(page) {
  return page.$$eval('.todo-list li', (items) =>
    items.map((li) => ({
      title: li.querySelector('label').textContent,
      completed: li.classList.contains('completed'),
    })),
  );
}

/** Waits until the page shows `expected` (the todos, in order), or fails saying what it shows. */
async function expectShown(page, expected, what) {
  const deadline = Date.now() + 10_000;
  let last;
  while (Date.now() < deadline) {
    last = await shown(page);
    if (JSON.stringify(last) === JSON.stringify(expected)) return;
    await page.waitForTimeout(50);
  }
  const error = await page.textContent('.error');
  throw new Error(
    `${what}: expected ${JSON.stringify(expected)}\n  the page shows ${JSON.stringify(last)}` +
      (error ? `\n  and the error line says: ${error}` : ''),
  );
}

async function expectCount(page, text) {
  const count = page.locator('.todo-count');
  await count.waitFor();
  const deadline = Date.now() + 10_000;
  let last;
  while (Date.now() < deadline) {
    last = (await count.textContent()).trim();
    if (last === text) return;
    await page.waitForTimeout(50);
  }
  throw new Error(`the counter says ${JSON.stringify(last)}, not ${JSON.stringify(text)}`);
}

/** The todos as the API has them, without ids. */
async function stored(page) {
  const todos = await page.evaluate(() => fetch('/api/todos').then((r) => r.json()));
  return todos.map(({ title, completed }) => ({ title, completed }));
}

function item(page, title) {
  return page.locator('.todo-list li', { has: page.locator('label', { hasText: title }) });
}

async function add(page, title) {
  await page.fill('.new-todo', title);
  await page.press('.new-todo', 'Enter');
}

async function fresh(page) {
  await page.goto(url);
  await page.waitForLoadState('networkidle');
  check(
    (await shown(page)).length === 0,
    `expected no todos at first, found ${JSON.stringify(await shown(page))}`,
  );
  check(await page.isHidden('.main'), 'the list shows with no todos');
  check(await page.isHidden('.footer'), 'the footer shows with no todos');

  const titles = [
    'Buy milk',
    'Write the walkthrough',
    'Water the plants',
    'Call the bank',
    'Book the train',
  ];
  // A blank title adds nothing; spaces around a title are trimmed.
  await add(page, '   ');
  for (const title of titles.slice(0, -1)) await add(page, title);
  await add(page, `  ${titles[titles.length - 1]}  `);
  await expectShown(
    page,
    titles.map((title) => ({ title, completed: false })),
    'after adding five todos',
  );
  check((await page.inputValue('.new-todo')) === '', 'the new-todo field is not cleared');
  await expectCount(page, '5 items left');

  // Complete one.
  await item(page, 'Buy milk').locator('.toggle').check();
  await expectCount(page, '4 items left');
  check(await item(page, 'Buy milk').evaluate((li) => li.classList.contains('completed')),
    '"Buy milk" is not shown completed');

  // Edit one: double-click, type, Enter.
  await item(page, 'Water the plants').locator('label').dblclick();
  const edit = page.locator('.todo-list li.editing .edit');
  await edit.waitFor();
  await edit.fill('Water the plants and the garden');
  await edit.press('Enter');
  await item(page, 'Water the plants and the garden').waitFor();

  // Escape cancels an edit.
  await item(page, 'Call the bank').locator('label').dblclick();
  await edit.waitFor();
  await edit.fill('Call the bank about nothing');
  await edit.press('Escape');
  check((await page.locator('.todo-list li.editing').count()) === 0, 'Escape left the editor open');

  // Delete one (the button shows on hover).
  await item(page, 'Call the bank').hover();
  await item(page, 'Call the bank').locator('.destroy').click();
  await expectShown(
    page,
    [
      { title: 'Buy milk', completed: true },
      { title: 'Write the walkthrough', completed: false },
      { title: 'Water the plants and the garden', completed: false },
      { title: 'Book the train', completed: false },
    ],
    'after completing, editing and deleting',
  );

  // The filters and their routes.
  await page.click('.filters a[href="#/active"]');
  await expectShown(
    page,
    [
      { title: 'Write the walkthrough', completed: false },
      { title: 'Water the plants and the garden', completed: false },
      { title: 'Book the train', completed: false },
    ],
    'under #/active',
  );
  check(page.url().endsWith('#/active'), `the route is ${page.url()}`);
  await page.click('.filters a[href="#/completed"]');
  await expectShown(page, [{ title: 'Buy milk', completed: true }], 'under #/completed');
  check(
    (await page.getAttribute('.filters a[href="#/completed"]', 'class')) === 'selected',
    'the Completed filter is not highlighted',
  );
  await page.click('.filters a[href="#/"]');

  // Clear completed.
  await page.click('.clear-completed');
  await expectShown(
    page,
    [
      { title: 'Write the walkthrough', completed: false },
      { title: 'Water the plants and the garden', completed: false },
      { title: 'Book the train', completed: false },
    ],
    'after clearing the completed todos',
  );
  check(await page.isHidden('.clear-completed'), '"Clear completed" shows with none completed');

  // Toggle all, both ways.
  await page.click('label[for="toggle-all"]');
  await expectCount(page, '0 items left');
  check(await page.isChecked('.toggle-all'), 'toggle-all is not checked with all completed');
  await page.click('label[for="toggle-all"]');
  await expectCount(page, '3 items left');

  await item(page, 'Book the train').locator('.toggle').check();
  await expectShown(page, FINAL, 'at the end');
  await expectCount(page, '2 items left');
  check(await page.isHidden('.error'), `an error shows: ${await page.textContent('.error')}`);
  check(
    JSON.stringify(await stored(page)) === JSON.stringify(FINAL),
    `the API has ${JSON.stringify(await stored(page))}`,
  );

  // A reload reads them back from the server.
  await page.reload();
  await expectShown(page, FINAL, 'after a reload');
  await expectCount(page, '2 items left');
}

async function kept(page) {
  await page.goto(url);
  await expectShown(page, FINAL, 'after Trellis restarted');
  await expectCount(page, '2 items left');
  check(
    JSON.stringify(await stored(page)) === JSON.stringify(FINAL),
    `the API has ${JSON.stringify(await stored(page))}`,
  );
}

async function unreachable(page) {
  await page.goto(url);
  const error = page.locator('.error');
  await error.waitFor({ state: 'visible', timeout: 15_000 });
  const text = await error.textContent();
  check(
    text.includes('GET /api/todos: 503') && text.includes('key-value store failed'),
    `the error line says ${JSON.stringify(text)}`,
  );
  check((await shown(page)).length === 0, 'todos show without a store');
}

const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 800, height: 560 } });
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });
  if (step === 'fresh') await fresh(page);
  else if (step === 'kept') await kept(page);
  else if (step === 'unreachable') await unreachable(page);
  else throw new Error(`STEP is ${step}; it is fresh, kept or unreachable`);
  await page.locator('.new-todo').blur();
  await screenshot(page, `todomvc-${label}-${step}`);
  // A failed request is logged by the browser itself; only `unreachable` expects them.
  const unexpected = step === 'unreachable' ? problems.filter((p) => !p.includes('503')) : problems;
  check(unexpected.length === 0, unexpected.join('\n'));
  console.log('ok');
  console.log(JSON.stringify(await shown(page)));
} finally {
  await browser.close();
}
