// Property tests of the protocol decoder and parser: whatever a worker
// writes, in whatever pieces, vigild neither throws nor holds more than one
// message's worth of bytes, and every line it completes is either a message
// or a counted error. `make fuzz` runs many more cases (FUZZ_RUNS).
import { expect } from "chai";
import fc from "fast-check";
import { LineDecoder, MAX_MESSAGE_BYTES, parseVigilMessage, parseWorkerMessage } from "../../../lib/protocol/index.js";

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);

/** Bytes cut into random pieces, as a socket delivers them. */
function chunked(bytes: Uint8Array, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const p of [...points, bytes.length]) {
    out.push(Buffer.from(bytes.subarray(from, p)));
    from = p;
  }
  return out;
}

const validMessage = fc.oneof(
  fc.constant('{"type":"ready"}'),
  fc.string().map((text) => JSON.stringify({ type: "status", text })),
  fc.boolean().map((t) => JSON.stringify({ type: "handlers-done", timed_out: t })),
  fc.constant('{"type":"teardown"}'),
  fc.record({ client: fc.string(), version: fc.string() }).map((r) => JSON.stringify({ type: "hello", ...r })),
);

const hostileLine = fc.oneof(
  fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString("latin1")),
  fc.string({ unit: "binary", maxLength: 200 }),
  fc.json({ maxDepth: 6 }),
  fc.integer({ min: 1, max: 5000 }).map((d) => "[".repeat(d) + "]".repeat(d)),
  fc.integer({ min: 1, max: 5000 }).map((d) => '{"a":'.repeat(d) + "1" + "}".repeat(d)),
  fc.double().map((n) => JSON.stringify({ type: "status", text: n })),
  fc.string().map((t) => JSON.stringify({ type: t })),
  fc.constant('{"type":"hello","client":' + "9".repeat(400) + "}"),
  validMessage,
);

describe("fuzz: worker protocol", function () {
  this.timeout(120_000);

  it("never throws, stays bounded, and accounts for every line (random bytes, random chunking)", () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(hostileLine, fc.constant("x".repeat(70_000))), { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 30 }), fc.boolean(), (lines, cuts, trailing) => {
        const text = lines.join("\n") + (trailing ? "\n" : "");
        const bytes = Buffer.from(text, "latin1");
        const decoder = new LineDecoder();
        let outcomes = 0;
        for (const chunk of chunked(bytes, cuts)) {
          for (const item of decoder.push(chunk)) {
            outcomes++;
            if (item.kind === "line") {
              expect(Buffer.byteLength(item.line, "utf8")).to.be.at.most(MAX_MESSAGE_BYTES * 3);
              const parsed = parseWorkerMessage(item.line);
              expect(parsed.ok === true || typeof parsed.error === "string").to.equal(true);
            } else {
              expect(item.bytes).to.be.greaterThan(MAX_MESSAGE_BYTES - 1);
            }
          }
          // An over-long line is counted, not kept.
          expect(decoder.heldBytes).to.be.below(MAX_MESSAGE_BYTES);
        }
        const newlines = bytes.filter((b) => b === 0x0a).length;
        expect(outcomes).to.equal(newlines);
      }),
      { numRuns: RUNS },
    );
  });

  it("keeps at most one message's worth of bytes, however long a line grows", () => {
    const decoder = new LineDecoder();
    for (let i = 0; i < 200; i++) {
      decoder.push(Buffer.alloc(8192, 0x41));
      expect(decoder.heldBytes).to.be.below(MAX_MESSAGE_BYTES);
    }
    const out = decoder.push(Buffer.from("\n{\"type\":\"ready\"}\n"));
    expect(out[0]).to.deep.equal({ kind: "oversized", bytes: 200 * 8192 + 1 });
    expect(out[1]).to.deep.equal({ kind: "line", line: '{"type":"ready"}' });
    expect(decoder.buffered).to.equal(0);
  });

  it("every valid message round-trips; every other line is an error, never an exception", () => {
    fc.assert(
      fc.property(validMessage, (line) => {
        expect(parseWorkerMessage(line).ok).to.equal(true);
      }),
      { numRuns: RUNS },
    );
    fc.assert(
      fc.property(hostileLine, (line) => {
        const r = parseWorkerMessage(line);
        expect(typeof r.ok).to.equal("boolean");
        const v = parseVigilMessage(line);
        expect(typeof v.ok).to.equal("boolean");
      }),
      { numRuns: RUNS },
    );
  });
});
