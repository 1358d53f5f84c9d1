// Builds the dashboard into crates/dashboard/assets/, which `trellis` embeds. The output must
// be the same bytes on every machine (`scripts/dashboard check` compares it with what is
// committed), so file names are fixed rather than content-hashed: the Rust crate names each
// file it embeds, and the server sends `Cache-Control: no-cache` so a new binary's assets
// are never hidden behind an old cached copy.
import { defineConfig } from 'vite';

export default defineConfig({
  // Preact's automatic JSX runtime through Vite's own esbuild: no framework plugin needed.
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: '../crates/dashboard/assets',
    emptyOutDir: true,
    // No module-preload polyfill: the page has one script, and every browser Trellis
    // supports loads ES modules natively.
    modulePreload: { polyfill: false },
    // Everything in two files; nothing is ever fetched from the internet.
    assetsInlineLimit: 100000,
    cssCodeSplit: false,
    rollupOptions: {
      output: {
        entryFileNames: 'assets/dashboard.js',
        chunkFileNames: 'assets/[name].js',
        assetFileNames: 'assets/dashboard[extname]',
      },
    },
  },
});
