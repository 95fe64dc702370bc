import { expect } from "chai";
import { monotonicMs, systemClock } from "../../daemon/clock/clock.js";
import { FakeClock } from "../../daemon/clock/fake.js";

describe("clock", () => {
  it("never runs a timer before its deadline on the monotonic clock (regression: early Node timers)", async () => {
    const lateness: number[] = [];
    // Node's cached loop time goes stale while JS runs: that is when naive timers fire early.
    const spinUntil = monotonicMs() + 3;
    while (monotonicMs() < spinUntil);
    await Promise.all(
      Array.from({ length: 40 }, (_, i) => {
        const at = monotonicMs() + 1 + (i % 7) + 0.5;
        return new Promise<void>((done) =>
          systemClock.at(at, () => {
            lateness.push(monotonicMs() - at);
            done();
          }),
        );
      }),
    );
    expect(Math.min(...lateness)).to.be.at.least(0);
  });

  it("cancel stops a pending timer", async () => {
    let fired = false;
    systemClock.at(monotonicMs() + 5, () => (fired = true)).cancel();
    await new Promise((r) => setTimeout(r, 20));
    expect(fired).to.equal(false);
  });

  it("the fake clock fires due timers in deadline order, each at its own time", () => {
    const clock = new FakeClock(0);
    const seen: Array<[string, number]> = [];
    clock.at(30, () => seen.push(["b", clock.now()]));
    clock.at(10, () => {
      seen.push(["a", clock.now()]);
      clock.at(20, () => seen.push(["nested", clock.now()]));
    });
    clock.at(100, () => seen.push(["late", clock.now()]));
    clock.advance(50);
    expect(seen).to.deep.equal([
      ["a", 10],
      ["nested", 20],
      ["b", 30],
    ]);
    expect(clock.now()).to.equal(50);
    expect(clock.pendingCount).to.equal(1);
  });
});
