/**
 * Builds the web console: console/ -> dist/console, which Hookline serves at
 * /console/ (src/api/console.ts). `npm run build:console` runs it.
 *
 * No plugins: Preact's JSX goes through Vite's own Oxc transform, and the
 * output has no inline code, so it runs under the console's strict
 * Content-Security-Policy.
 */
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  base: "/console/",
  oxc: {
    jsx: { runtime: "automatic", importSource: "preact" },
  },
  build: {
    outDir: "../dist/console",
    emptyOutDir: true,
    // Never inline assets as data: URLs (the CSP allows only 'self').
    assetsInlineLimit: 0,
    // Every browser the console supports preloads modules natively.
    modulePreload: { polyfill: false },
    // What the browser can run as is; no lowering needed for evergreen browsers.
    target: "es2022",
  },
});
