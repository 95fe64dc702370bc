// vigil's version has one source, package.json: scripts/clients.sh stamps it
// into the wheel and the npm tarball. The copies in the client sources (what
// a checkout runs, and what `pip install lib/python` would build) must say
// the same, or a worker run from the tree reports another version than the
// packages built from it.
import { expect } from "chai";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO } from "../../helpers/repo.js";

const version = (JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { version: string }).version;

describe("client versions follow package.json", () => {
  it("the Python client's __version__", () => {
    const source = readFileSync(join(REPO, "lib/python/vigil/__init__.py"), "utf8");
    const found = /^__version__ = "([^"]*)"$/m.exec(source);
    expect(found, "a __version__ line scripts/clients.sh can stamp").to.not.equal(null);
    expect(found![1]).to.equal(version);
  });

  it("the Node worker package's package.json", () => {
    const manifest = JSON.parse(readFileSync(join(REPO, "lib/node/package.json"), "utf8")) as {
      version: string;
      type: string;
      dependencies?: unknown;
    };
    expect(manifest.version).to.equal(version);
    // "module": vigild's own build compiles lib/node/*.ts as ES modules by it.
    expect(manifest.type).to.equal("module");
    expect(manifest.dependencies, "no runtime dependencies").to.equal(undefined);
  });
});
