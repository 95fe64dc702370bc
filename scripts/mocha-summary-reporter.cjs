// mocha's spec reporter, plus the one closing line CI reads:
// "N passed, N failed, N skipped". Skipped tests are listed with their
// reason so none is silent.
"use strict";
const Mocha = require("mocha");

const { Spec } = Mocha.reporters;
const { EVENT_RUN_END, EVENT_TEST_PENDING } = Mocha.Runner.constants;

class SummaryReporter extends Spec {
  constructor(runner, options) {
    super(runner, options);
    const skipped = [];
    runner.on(EVENT_TEST_PENDING, (test) => skipped.push(test.fullTitle()));
    runner.once(EVENT_RUN_END, () => {
      const s = runner.stats;
      if (skipped.length > 0) {
        console.log("skipped:");
        for (const title of skipped) console.log(`  - ${title}`);
      }
      console.log(`${s.passes} passed, ${s.failures} failed, ${s.pending} skipped`);
    });
  }
}

module.exports = SummaryReporter;
