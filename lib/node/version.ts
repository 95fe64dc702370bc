import { readFileSync } from "node:fs";
import { CLIENT_DIR_URL } from "./here.js";

export const CLIENT_NAME = "node";

/**
 * The version in the package's package.json, three directories up from the
 * client's modules: dist/lib/node/ in vigil's tree and its `make install`
 * layout, esm/lib/node/ and cjs/lib/node/ in the worker package.
 */
export const CLIENT_VERSION: string = (
  JSON.parse(readFileSync(new URL("../../../package.json", CLIENT_DIR_URL), "utf8")) as { version: string }
).version;
