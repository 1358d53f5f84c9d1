// Builds the TodoMVC front end into ../assets/, the files the component embeds:
//
//   index.html  copied from src/
//   app.js      src/app.js and its imports, bundled and minified by esbuild
//   app.css     src/app.css with todomvc-app-css inlined, minified (keeping `/*! */` notices)
//
// The output depends only on src/ and the locked packages (esbuild's output is deterministic),
// so a rebuild gives the same bytes. `node build.mjs --check` builds in memory and fails,
// naming the files, when ../assets/ differs: the committed assets are what this source builds.

import * as esbuild from 'esbuild';
import { readFileSync, writeFileSync, mkdirSync, readdirSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const src = join(here, 'src');
const out = join(here, '..', 'assets');
const check = process.argv.includes('--check');

const common = {
  bundle: true,
  minify: true,
  write: false,
  logLevel: 'warning',
  legalComments: 'inline',
  // Sources are named relative to this folder in any message, never by absolute path.
  absWorkingDir: here,
};

async function build() {
  const js = await esbuild.build({
    ...common,
    entryPoints: ['src/app.js'],
    outfile: 'app.js',
    format: 'iife',
    target: ['es2020'],
  });
  const css = await esbuild.build({
    ...common,
    entryPoints: ['src/app.css'],
    outfile: 'app.css',
    target: ['chrome90', 'firefox90', 'safari14'],
  });
  return new Map([
    ['index.html', readFileSync(join(src, 'index.html'))],
    ['app.js', Buffer.from(js.outputFiles[0].contents)],
    ['app.css', Buffer.from(css.outputFiles[0].contents)],
  ]);
}

const files = await build();

if (check) {
  const problems = [];
  for (const [name, bytes] of files) {
    const path = join(out, name);
    if (!existsSync(path)) problems.push(`${name} is missing`);
    else if (!readFileSync(path).equals(bytes)) problems.push(`${name} differs`);
  }
  const extra = existsSync(out) ? readdirSync(out).filter((name) => !files.has(name)) : [];
  for (const name of extra) problems.push(`${name} is not built by build.mjs`);
  if (problems.length) {
    console.error(
      `examples/todomvc/assets/ is not what examples/todomvc/web builds: ${problems.join(', ')}.\n` +
        'Rebuild it with `scripts/todomvc-assets build` and commit the result.',
    );
    process.exit(1);
  }
  console.log(`examples/todomvc/assets/ matches its source (${files.size} files)`);
} else {
  mkdirSync(out, { recursive: true });
  for (const [name, bytes] of files) {
    writeFileSync(join(out, name), bytes);
    console.log(`wrote examples/todomvc/assets/${name} (${bytes.length} bytes)`);
  }
}
