// ESLint for the browser code (`make lint`, `make test`): the wall's scripts, the sign-in
// page's script and the node tests of their pure parts. ESLint's recommended rules; the
// globals are the browser's plus what the pages load before our scripts.
import js from '@eslint/js';
import globals from 'globals';

// Set by the page, never by our scripts: Leaflet (dash-leaflet's bundle sets window.L),
// hls.js (cc-66 loads /vendor/hls.min.js on first use), Dash's clientside bridge.
const pageLibraries = {
  L: 'readonly',
  Hls: 'readonly',
  dash_clientside: 'writable',
  ccwall: 'writable', // the namespace every cc-*.js file hangs off (window.ccwall)
};

export default [
  { ignores: ['node_modules/', '.venv/', 'var/', 'build/'] },
  js.configs.recommended,
  {
    rules: {
      // `catch (e) { /* nothing to do */ }` names what it ignores; that is not dead code
      'no-unused-vars': ['error', { caughtErrors: 'none' }],
    },
  },
  {
    // classic scripts, loaded by Dash from assets/ in file-name order (no modules)
    files: ['assets/js/**/*.js', 'layouts/templates/*.js'],
    languageOptions: {
      ecmaVersion: 2020,
      sourceType: 'script',
      globals: { ...globals.browser, ...pageLibraries },
    },
  },
  {
    files: ['tests/js/**/*.js'],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: 'commonjs',
      globals: { ...globals.node },
    },
  },
  {
    files: ['eslint.config.mjs'],
    languageOptions: { sourceType: 'module', globals: { ...globals.node } },
  },
];
