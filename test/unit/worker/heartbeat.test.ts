// The heartbeat monitor on a fake clock and the real shared file: one timer,
// woken only when the earliest deadline is due, whatever the number of workers.
import { expect } from "chai";
import { writeSync } from "node:fs";
import { FakeClock } from "../../../daemon/clock/fake.js";
import { HeartbeatFile, HeartbeatMonitor } from "../../../daemon/worker/heartbeat.js";

function beat(file: HeartbeatFile, slot: number, ms: number): void {
  const buf = Buffer.alloc(8);
  buf.writeBigUInt64LE(BigInt(Math.round(ms * 1000)) * 1000n);
  writeSync(file.fd, buf, 0, 8, slot * 8);
}

function simulate(workers: number, seconds: number, hung: ReadonlySet<number> = new Set()): {
  wakeups: number;
  missed: Array<{ slot: number; at: number; lastBeatAt: number }>;
} {
  const clock = new FakeClock(10_000);
  const file = new HeartbeatFile();
  const monitor = new HeartbeatMonitor(file, clock);
  const missed: Array<{ slot: number; at: number; lastBeatAt: number }> = [];
  const slots = Array.from({ length: workers }, () => file.allocate());
  for (const slot of slots) monitor.watch(slot, 1000, clock.now(), (lastBeatAt) => missed.push({ slot, at: clock.now(), lastBeatAt }));
  // Workers beat every 250 ms, spread over the interval.
  for (let t = 0; t < seconds * 1000; t += 50) {
    for (const slot of slots) {
      if (!hung.has(slot) && (slot % 5) * 50 === t % 250) beat(file, slot, clock.now());
    }
    clock.advance(50);
  }
  const wakeups = monitor.wakeups;
  monitor.stop();
  file.close();
  return { wakeups, missed };
}

describe("heartbeat monitor", () => {
  it("wakes about once per 3/4 timeout, the same for 10 and 1000 workers", () => {
    const few = simulate(10, 30);
    const many = simulate(1000, 30);
    expect(few.missed).to.deep.equal([]);
    expect(many.missed).to.deep.equal([]);
    expect(few.wakeups).to.be.within(30, 45);
    expect(Math.abs(many.wakeups - few.wakeups)).to.be.at.most(3);
  });

  it("sees a worker that stopped beating at its deadline, and only that one", () => {
    const { missed } = simulate(200, 5, new Set([7]));
    expect(missed).to.have.length(1);
    expect(missed[0]!.slot).to.equal(7);
    expect(missed[0]!.at - missed[0]!.lastBeatAt).to.equal(1000);
  });

  it("reuses a freed slot with its old beat cleared", () => {
    const file = new HeartbeatFile();
    const a = file.allocate();
    beat(file, a, 123_456);
    file.release(a);
    const b = file.allocate();
    expect(b).to.equal(a);
    expect(file.readAll()(b)).to.equal(0);
    file.close();
  });
});
