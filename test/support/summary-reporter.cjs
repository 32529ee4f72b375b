// Mocha reporter: the spec reporter, then one closing line `N passed, N failed` alone on a line.
// A run with no test at all counts as a failure. (CommonJS: mocha loads reporters with require.)
'use strict';
const Mocha = require('mocha');
const { EVENT_RUN_END } = Mocha.Runner.constants;

class SummaryReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once(EVENT_RUN_END, () => {
      const { passes = 0, failures = 0, pending = 0 } = runner.stats ?? {};
      // A skipped test is a test that did not pass: counted as failed.
      const failed = failures + pending + (passes + failures + pending === 0 ? 1 : 0);
      if (passes + failures + pending === 0) process.stdout.write('\nno tests ran: counted as a failure\n');
      if (pending > 0) process.stdout.write(`\n${pending} skipped: counted as failed\n`);
      process.stdout.write(`\n${passes} passed, ${failed} failed\n`);
      // Mocha exits with the runner's failure count: skipped tests and an empty run raise it too.
      runner.failures += failed - failures;
      globalThis.__gitfsSummaryWritten = true;
      if (failed > 0) process.exitCode = 1;
    });
  }
}

module.exports = SummaryReporter;
