// vigild's log as journald and a terminal see it.
import { expect } from "chai";
import { PassThrough } from "node:stream";
import { createLogger, resolveFormat } from "../../../daemon/log/logger.js";
import { Vigild, py, stopAll } from "../../helpers/vigild.js";

function capture(format: "journal" | "json" | "text", level: "info" | "debug" = "info"): { lines: () => string[]; log: ReturnType<typeof createLogger> } {
  const stream = new PassThrough();
  let text = "";
  stream.on("data", (c: Buffer) => (text += c.toString()));
  return { lines: () => text.split("\n").filter(Boolean), log: createLogger({ level, format, stream }) };
}

describe("logging", function () {
  this.timeout(30_000);
  afterEach(stopAll);

  it("auto is journal under journald (JOURNAL_STREAM set), text otherwise", () => {
    expect(resolveFormat("auto", { JOURNAL_STREAM: "8:1234" })).to.equal("journal");
    expect(resolveFormat("auto", {})).to.equal("text");
    expect(resolveFormat("json", { JOURNAL_STREAM: "8:1234" })).to.equal("json");
  });

  it("journal lines carry syslog priority prefixes journald understands", () => {
    const { log, lines } = capture("journal", "debug");
    log.error("e", { program: "web", worker: 1, pid: 42 });
    log.warn("w");
    log.info("i");
    log.debug("d");
    expect(lines()).to.deep.equal(["<3>e program=web worker=1 pid=42", "<4>w", "<6>i", "<7>d"]);
  });

  it("json lines are one object per event with the fields; levels filter", () => {
    const { log, lines } = capture("json");
    log.info("hello world", { program: "web", worker: 0, pid: 7 });
    log.debug("hidden");
    const [line, ...rest] = lines();
    expect(rest).to.deep.equal([]);
    const entry = JSON.parse(line!) as Record<string, unknown>;
    expect(entry).to.include({ level: "info", msg: "hello world", program: "web", worker: 0, pid: 7 });
  });

  it("text quotes values with spaces so a line stays parseable", () => {
    const { log, lines } = capture("text");
    log.info("x", { status: "two words", program: "web" });
    expect(lines()[0]).to.match(/INFO  x status="two words" program=web$/);
  });

  it("a real vigild under JOURNAL_STREAM attributes worker output with program, worker and pid", async () => {
    const v = new Vigild({ log: { level: "info", format: "auto" }, programs: { web: { command: py("py_ok.py"), protocol: "on" } } }, {
      env: { JOURNAL_STREAM: "8:1" },
      format: "journal",
    });
    await v.waitUntil(() => v.rawLines.find((l) => /^<6>fixture py_ok pid=\d+ program=web worker=0 pid=\d+ stream=stdout$/.test(l)), 10_000, "an attributed worker line");
    expect(v.rawLines.every((l) => /^<[3467]>/.test(l)), v.rawLines.join("\n")).to.equal(true);
  });
});
