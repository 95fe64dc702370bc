// A worker's output within its budget: lines, priorities, and what happens
// when the log stops taking them (the budget is held, the rest is dropped
// and counted to the byte, one episode at a time).
import { expect } from "chai";
import { PassThrough } from "node:stream";
import { FakeClock } from "../../../daemon/clock/fake.js";
import { DROP_PAUSE_MS, MAX_OUTPUT_LINE, WorkerOutput, parseLevelPrefix, type OutputLine } from "../../../daemon/worker/output.js";

interface Harness {
  lines: OutputLine[];
  /** `taken` callbacks of lines the log has not taken yet. */
  untaken: Array<() => void>;
  dropped: number;
  episodes: number;
  output: WorkerOutput;
  clock: FakeClock;
}

function harness(budget?: number): Harness {
  const clock = new FakeClock();
  const h: Harness = { lines: [], untaken: [], dropped: 0, episodes: 0, clock, output: null as unknown as WorkerOutput };
  h.output = new WorkerOutput(
    {
      lines: (lines, taken) => {
        h.lines.push(...lines);
        h.untaken.push(taken);
      },
      dropped: (bytes, first) => {
        h.dropped += bytes;
        if (first) h.episodes++;
      },
    },
    (ms, fn) => void clock.at(clock.now() + ms, fn),
    budget,
  );
  return h;
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

function takeAll(h: Harness): void {
  const pending = h.untaken;
  h.untaken = [];
  for (const taken of pending) taken();
}

describe("worker output", () => {
  it("splits lines, strips CR, reads <N> priority prefixes and cuts over-long lines", async () => {
    const h = harness();
    const out = new PassThrough();
    const err = new PassThrough();
    h.output.attach(out, "stdout");
    h.output.attach(err, "stderr");
    out.write("one\r\ntw");
    out.write("o\n<3>broken\n");
    err.write("x".repeat(MAX_OUTPUT_LINE + 10));
    err.end();
    out.end("tail");
    await turn();
    expect(h.lines.map((l) => [l.stream, l.text.length > 100 ? l.text.length : l.text, l.priority])).to.deep.equal([
      ["stdout", "one", null],
      ["stdout", "two", null],
      ["stdout", "broken", 3],
      ["stderr", MAX_OUTPUT_LINE, null],
      ["stderr", "x".repeat(10), null],
      ["stdout", "tail", null],
    ]);
    expect(parseLevelPrefix("<8>not a priority")).to.deep.equal({ text: "<8>not a priority", priority: null });
  });

  it("holds at most its budget while the log takes nothing, and counts every other byte as dropped", async () => {
    const budget = 64 * 1024;
    const h = harness(budget);
    const out = new PassThrough({ highWaterMark: 4096 });
    h.output.attach(out, "stdout");
    const line = "0123456789abcdef".repeat(4) + "\n"; // 65 bytes
    let written = 0;
    for (let round = 0; round < 200; round++) {
      const chunk = line.repeat(60);
      out.write(chunk);
      written += chunk.length;
      await turn();
      // The pipe rests after each dropped chunk; let the fake time pass.
      h.clock.advance(DROP_PAUSE_MS);
      await turn();
      expect(h.output.heldBytes).to.be.at.most(budget);
    }
    out.end();
    await turn();
    const delivered = h.lines.reduce((n, l) => n + Buffer.byteLength(l.text) + 1, 0);
    expect(h.dropped).to.be.above(0);
    expect(delivered + h.dropped).to.equal(written);
    // One episode: it never drained, so it never ended.
    expect(h.episodes).to.equal(1);
  });

  it("starts a new episode only after the log drained to half the budget", async () => {
    const budget = 8 * 1024;
    const h = harness(budget);
    const out = new PassThrough();
    h.output.attach(out, "stdout");
    const chunk = `${"y".repeat(1023)}\n`.repeat(4); // 4 KiB
    for (let i = 0; i < 4; i++) {
      out.write(chunk);
      await turn();
      h.clock.advance(DROP_PAUSE_MS);
      await turn();
    }
    expect(h.episodes).to.equal(1);
    takeAll(h);
    out.write(chunk);
    await turn();
    expect(h.output.heldBytes).to.equal(4 * 1023); // the lines, without their newlines
    out.write(chunk);
    out.write(chunk);
    await turn();
    h.clock.advance(DROP_PAUSE_MS);
    await turn();
    expect(h.episodes).to.equal(2);
  });
});
