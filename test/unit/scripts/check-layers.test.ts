// scripts/check-layers.ts on a tiny repository written to a temporary
// directory: the imports it must see (type-only, re-exports, dynamic) and the
// ones it must not (comments, packages), an upward import, a cycle, and the
// allow-list that must only shrink.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { expect } from "chai";
import { check, findCycles, layerOf, readGraph } from "../../../scripts/check-layers.js";

function writeTree(root: string, files: Record<string, string>): void {
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
}

describe("check-layers", function () {
  let root: string;

  beforeEach(function () {
    root = mkdtempSync(join(tmpdir(), "vigil-layers-"));
  });

  afterEach(function () {
    rmSync(root, { recursive: true, force: true });
  });

  it("passes a tree whose imports all point down or sideways", function () {
    writeTree(root, {
      "lib/protocol/index.ts": `export const V = 1;\n`,
      "daemon/clock/clock.ts": `import { V } from "../../lib/protocol/index.js";\nexport const c = V;\n`,
      "daemon/config/types.ts": `import type { c } from "../clock/clock.js";\nexport type T = typeof c;\n`,
      "daemon/config/load.ts": `import type { T } from "./types.js";\nimport { parse } from "yaml";\nexport const l = (t: T) => parse(String(t));\n`,
      "daemon/main.ts": `import "./config/load.js";\n// import { x } from "./ctl/main.js";  (a comment, not an import)\n`,
      "daemon/ctl/main.ts": `import type { T } from "../config/types.js";\nexport type U = T;\n`,
    });
    expect(check(readGraph(root), undefined, [])).to.deep.equal({ problems: [], known: [] });
  });

  it("finds type-only imports, re-exports and dynamic imports, and nothing in comments or packages", function () {
    writeTree(root, {
      "daemon/worker/a.ts": [
        `import type { B } from "../supervisor/b.js";`,
        `export { C } from "../metrics/c.js";`,
        `export async function load() { return import("../dbus/d.js"); }`,
        `// import "../daemon.js";`,
        `/* import "../ctl/main.js"; */`,
        `import winston from "winston";`,
        `export type A = B | typeof winston;`,
      ].join("\n"),
    });
    expect(readGraph(root).get("daemon/worker/a.ts")).to.deep.equal([
      "daemon/supervisor/b.ts",
      "daemon/metrics/c.ts",
      "daemon/dbus/d.ts",
    ]);
  });

  it("fails an upward import, naming both modules and their layers", function () {
    writeTree(root, {
      "daemon/worker/worker.ts": `import type { E } from "../supervisor/events.js";\nexport type W = E;\n`,
      "daemon/supervisor/events.ts": `export type E = "spawned";\n`,
    });
    expect(check(readGraph(root), undefined, []).problems).to.deep.equal([
      "daemon/worker/worker.ts -> daemon/supervisor/events.ts: layer 3 parts imports layer 4 supervisor, above it",
    ]);
  });

  it("fails a client that imports the daemon, and vigilctl importing vigild's own code", function () {
    writeTree(root, {
      "lib/node/client.ts": `import { x } from "../../daemon/config/types.js";\nexport const y = x;\n`,
      "daemon/config/types.ts": `export const x = 1;\n`,
      "daemon/ctl/main.ts": `import "../daemon.js";\n`,
      "daemon/daemon.ts": `export {};\n`,
    });
    expect(check(readGraph(root), undefined, []).problems).to.deep.equal([
      "daemon/ctl/main.ts -> daemon/daemon.ts: layer 8 vigilctl imports layer 7 daemon, which it must not",
      "lib/node/client.ts -> daemon/config/types.ts: layer 0 clients imports layer 2 config, above it",
    ]);
  });

  it("fails an import cycle inside one layer, showing the cycle", function () {
    writeTree(root, {
      "daemon/config/a.ts": `import { b } from "./b.js";\nexport const a = () => b;\n`,
      "daemon/config/b.ts": `import { c } from "./c.js";\nexport const b = () => c;\n`,
      "daemon/config/c.ts": `import { a } from "./a.js";\nexport const c = () => a;\n`,
      "daemon/config/d.ts": `import { a } from "./a.js";\nexport const d = a;\n`,
    });
    expect(check(readGraph(root), undefined, []).problems).to.deep.equal([
      "import cycle: daemon/config/a.ts -> daemon/config/b.ts -> daemon/config/c.ts -> daemon/config/a.ts",
    ]);
  });

  it("finds a module importing itself, and each separate cycle once", function () {
    const graph = new Map<string, string[]>([
      ["x", ["x"]],
      ["p", ["q"]],
      ["q", ["p", "x"]],
      ["r", ["p"]],
    ]);
    expect(findCycles(graph)).to.deep.equal([["x", "x"], ["p", "q", "p"]]);
  });

  it("fails a module in no layer, and an import of one", function () {
    writeTree(root, {
      "daemon/elsewhere/x.ts": `export const x = 1;\n`,
      "daemon/main.ts": `import "../test/helpers/repo.js";\n`,
    });
    expect(check(readGraph(root), undefined, []).problems).to.deep.equal([
      "daemon/elsewhere/x.ts: in no layer (add it to the table in scripts/check-layers.ts)",
      "daemon/main.ts -> test/helpers/repo.ts: imports a module in no layer",
    ]);
  });

  it("lets an allow-listed violation pass, and fails an entry that no longer occurs", function () {
    writeTree(root, {
      "daemon/config/load.ts": `import "../worker/user.js";\n`,
      "daemon/worker/user.ts": `export {};\n`,
    });
    const known = ["daemon/config/load.ts -> daemon/worker/user.ts", "daemon/lifecycle.ts -> daemon/control.ts"];
    expect(check(readGraph(root), undefined, known)).to.deep.equal({
      problems: ["daemon/lifecycle.ts -> daemon/control.ts: on the allow-list but no longer a violation: remove it from KNOWN"],
      known: ["daemon/config/load.ts -> daemon/worker/user.ts: layer 2 config imports layer 3 parts, above it"],
    });
  });

  it("places a file by its own entry before its directory's, and new top-level modules in the daemon layer", function () {
    expect(layerOf("daemon/log/logger.ts")?.level).to.equal(2);
    expect(layerOf("daemon/log/events.ts")?.level).to.equal(5);
    expect(layerOf("daemon/shutdown/collect.ts")?.level).to.equal(5);
    expect(layerOf("daemon/shutdown/report.ts")?.level).to.equal(3);
    expect(layerOf("daemon/dbus/systemd-unit.ts")?.level).to.equal(6);
    expect(layerOf("daemon/lifecycle.ts")?.level).to.equal(1);
    expect(layerOf("daemon/something-new.ts")?.level).to.equal(7);
    expect(layerOf("daemon/run/loop.ts")?.level).to.equal(7);
    expect(layerOf("daemon/ctl/main.ts")?.level).to.equal(8);
    expect(layerOf("daemon/core/events.ts")?.level).to.equal(1);
  });
});
