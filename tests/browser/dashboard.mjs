// The web dashboard in a real browser, against a real Trellis (crates/cli/tests/dashboard.rs
// starts it and passes what to expect in the environment).
//
//   DASHBOARD_URL   the address `trellis up` or `trellis dashboard` printed (…/#token=…)
//   MODE            `embedded` or `lattice`
//   embedded:  COMPONENT_ID, COMPONENT_URL (where it serves; its requests fail, since its
//              provider failed), MAX_INSTANCES (its limit now), PROVIDER_ID,
//              PROVIDER_REASON (what `trellis up` printed), SCALE_COMMAND (a JSON argv that
//              scales the component) and SCALED_TO (the limit after it)
//   lattice:   HOST_ID, LABEL (`key=value`, one of the host's labels)
import { launch, screenshot, required, check } from './lib.mjs';
import { execFileSync } from 'node:child_process';

const TIMEOUT = 20000;
const url = required('DASHBOARD_URL');
const mode = required('MODE');

const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const failures = [];
  page.on('pageerror', (e) => failures.push(`page error: ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && failures.push(`console: ${m.text()}`));
  // Anything but this server is a failure: the dashboard must work without the internet.
  const origin = new URL(url).origin;
  page.on('request', (r) => {
    if (!r.url().startsWith(origin)) failures.push(`fetched from elsewhere: ${r.url()}`);
  });

  await page.goto(url);
  // The token leaves the address bar as soon as the page has it.
  await page.waitForFunction(() => !window.location.hash.includes('token='), null, { timeout: TIMEOUT });

  if (mode === 'embedded') {
    await embedded(page);
  } else if (mode === 'lattice') {
    await lattice(page);
  } else {
    throw new Error(`MODE must be embedded or lattice, not ${mode}`);
  }

  // A page opened without the token says how to get it instead of showing nothing.
  const stranger = await browser.newPage();
  await stranger.goto(origin + '/');
  const error = stranger.locator('[data-testid=error]');
  await error.waitFor({ timeout: TIMEOUT });
  check((await error.innerText()).includes('#token='), `no hint about the token: ${await error.innerText()}`);
  await stranger.close();

  check(failures.length === 0, failures.join('\n'));
  console.log('ok');
} finally {
  await browser.close();
}

async function embedded(page) {
  const componentId = required('COMPONENT_ID');
  const providerId = required('PROVIDER_ID');
  const reason = required('PROVIDER_REASON');
  const component = page.locator(`tr[data-component="${componentId}"]`);
  await component.waitFor({ timeout: TIMEOUT });
  const limit = component.locator('[data-testid=max-instances]');
  await expectText(limit, required('MAX_INSTANCES'), 'the component\'s instance limit');

  const provider = page.locator(`tr[data-provider="${providerId}"]`);
  await provider.waitFor({ timeout: TIMEOUT });
  await expectText(provider.locator('[data-testid=provider-status]'), 'failed', 'the provider\'s status');
  const shown = await provider.locator('[data-testid=provider-reason]').innerText();
  check(shown.trim() === reason.trim(), `the page gives the reason as ${JSON.stringify(shown)}, trellis up printed ${JSON.stringify(reason)}`);
  await page.locator('[data-testid=live]', { hasText: 'live' }).waitFor({ timeout: TIMEOUT });

  // Requests to the component (from outside the page) show as a rate and as errors.
  const componentUrl = required('COMPONENT_URL');
  let sending = true;
  const load = (async () => {
    while (sending) {
      await fetch(componentUrl).then((r) => r.arrayBuffer()).catch(() => {});
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  try {
    await expectMatch(component.locator('[data-testid=rate]'), (t) => Number(t) > 0, 'the request rate');
    await expectMatch(component.locator('[data-testid=errors]'), (t) => parseInt(t, 10) > 0, 'the error count');
  } finally {
    sending = false;
    await load;
  }
  await screenshot(page, 'dashboard-embedded');

  // Scaled from outside the page: the page follows without a reload.
  const marker = await page.evaluate(() => (window.__notReloaded = true));
  const [bin, ...args] = JSON.parse(required('SCALE_COMMAND'));
  execFileSync(bin, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  await expectText(limit, required('SCALED_TO'), 'the instance limit after scaling');
  check(await page.evaluate(() => window.__notReloaded === true) && marker, 'the page reloaded');
  // The event that told it so is in the stream.
  await page.locator('[data-testid=events] li', { hasText: 'component_scaled' }).first().waitFor({ timeout: TIMEOUT });
  await screenshot(page, 'dashboard-embedded-scaled');
}

async function lattice(page) {
  const hostId = required('HOST_ID');
  const label = required('LABEL');
  const host = page.locator(`tr[data-host="${hostId}"]`);
  await host.waitFor({ timeout: TIMEOUT });
  await host.locator('.label', { hasText: label }).waitFor({ timeout: TIMEOUT });
  await page.locator('[data-testid=live]', { hasText: 'live' }).waitFor({ timeout: TIMEOUT });
  await screenshot(page, 'dashboard-lattice');
}

/** Waits until `locator`'s text passes `test`; fails naming `what` and what it showed. */
async function expectMatch(locator, test, what) {
  const deadline = Date.now() + TIMEOUT;
  let text = '';
  while (Date.now() < deadline) {
    text = (await locator.innerText().catch(() => '')).trim();
    if (test(text)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what}: the page shows ${JSON.stringify(text)}`);
}

/** Waits until `locator`'s text is `want`; fails naming `what` and what it showed. */
async function expectText(locator, want, what) {
  const deadline = Date.now() + TIMEOUT;
  let text = '';
  while (Date.now() < deadline) {
    text = (await locator.innerText().catch(() => '')).trim();
    if (text === want) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what}: the page shows ${JSON.stringify(text)}, expected ${JSON.stringify(want)}`);
}
