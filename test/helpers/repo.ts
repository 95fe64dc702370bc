// Where the repository is. Tests run compiled from dist/test/<tier>/...,
// while fixtures, the Python client and the units live in the source tree.
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (this file runs from dist/test/helpers/). */
export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
export const VIGILD = join(REPO, "dist/daemon/main.js");
export const FIXTURES = join(REPO, "test/fixtures/workers");
