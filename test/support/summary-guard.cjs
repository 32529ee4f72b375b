// Loaded by mocha before any test file (.mocharc.json "require"): when mocha stops before the
// reporter's closing line (a test file that fails to load, a describe body that throws), the run
// still ends with `N passed, N failed` alone on a line, counted as a failure.
'use strict';
process.on('exit', (code) => {
  if (globalThis.__gitfsSummaryWritten === true) return;
  process.stdout.write('\nthe run stopped before any summary (a test file did not load?): counted as a failure\n\n0 passed, 1 failed\n');
  if (code === 0) process.exitCode = 1;
});
