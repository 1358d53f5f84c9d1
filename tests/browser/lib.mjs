// Shared by the browser test scripts: Debian's Chromium through playwright-core, and where
// screenshots go. The Rust test that runs a script (trellis_test_support::browser) passes
// TRELLIS_ARTEFACTS, the folder for screenshots, and whatever the script needs (URLs) in
// the environment.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

/** Launches headless Chromium from /usr/bin/chromium (or $CHROMIUM); never downloads one. */
export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

/** Saves a full-page screenshot as $TRELLIS_ARTEFACTS/NAME.png and returns its path. */
export async function screenshot(page, name) {
  const dir = process.env.TRELLIS_ARTEFACTS || 'artefacts';
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** The environment variable NAME, or an error that says the Rust test must set it. */
export function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this script through its Rust test`);
  return value;
}

/** Fails with MESSAGE unless CONDITION holds. */
export function check(condition, message) {
  if (!condition) throw new Error(message);
}
