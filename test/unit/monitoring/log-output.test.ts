// A worker's output lines as vigild's log writes them, in each format: the
// fast path (fields rendered once per worker, one timestamp per read) must
// write what the log's ordinary entries would.
import { expect } from "chai";
import { PassThrough } from "node:stream";
import { createLogger } from "../../../daemon/log/logger.js";

function capture(format: "json" | "journal" | "text", level: "info" | "debug" = "info") {
  const stream = new PassThrough();
  let written = "";
  stream.on("data", (chunk: Buffer) => (written += chunk.toString("utf8")));
  const log = createLogger({ level, format, stream });
  const stdout = { program: "web", worker: 2, pid: 4242, stream: "stdout" };
  const stderr = { program: "web", worker: 2, pid: 4242, stream: "stderr" };
  const lines = [
    { priority: 6, message: 'plain "quoted" \\ line', fields: stdout },
    { priority: 3, message: "an error", fields: stderr },
    { priority: 7, message: "debug detail", fields: stdout },
    { priority: 5, message: "", fields: stdout },
  ];
  return { log, lines, text: () => written };
}

function outputOf(format: "json" | "journal" | "text", level: "info" | "debug" = "info"): Promise<string[]> {
  const c = capture(format, level);
  return new Promise((done) => c.log.output(c.lines, () => done(c.text().split("\n").slice(0, -1))));
}

describe("a worker's output in vigild's log", () => {
  it("json: one object per line, keys time, level, msg, then the worker's fields; below the level left out", async () => {
    const lines = await outputOf("json");
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed.map((p) => Object.keys(p))).to.deep.equal(Array(3).fill(["time", "level", "msg", "program", "worker", "pid", "stream"]));
    expect(parsed.map((p) => [p.level, p.msg, p.stream])).to.deep.equal([
      ["info", 'plain "quoted" \\ line', "stdout"],
      ["error", "an error", "stderr"],
      ["info", "", "stdout"],
    ]);
    expect(parsed.every((p) => p.program === "web" && p.worker === 2 && p.pid === 4242)).to.equal(true);
    expect(new Date(parsed[0]!.time as string).getTime()).to.be.closeTo(Date.now(), 5000);
  });

  it("journal: the exact syslog priority as prefix and the fields as key=value", async () => {
    expect(await outputOf("journal", "debug")).to.deep.equal([
      '<6>plain "quoted" \\ line program=web worker=2 pid=4242 stream=stdout',
      "<3>an error program=web worker=2 pid=4242 stream=stderr",
      "<7>debug detail program=web worker=2 pid=4242 stream=stdout",
      "<5> program=web worker=2 pid=4242 stream=stdout",
    ]);
  });

  it("text: time, level and the same fields, as the log's own entries", async () => {
    const lines = await outputOf("text");
    expect(lines.map((l) => l.replace(/^\S+ /, ""))).to.deep.equal([
      'INFO  plain "quoted" \\ line program=web worker=2 pid=4242 stream=stdout',
      "ERROR an error program=web worker=2 pid=4242 stream=stderr",
      "INFO   program=web worker=2 pid=4242 stream=stdout",
    ]);
  });
});
