import { readFileSync } from "node:fs";

export const CLIENT_NAME = "node";

/**
 * The version in the package's package.json: dist/lib/node/ -> package
 * root, in the source tree as in `make install`'s layout.
 */
export const CLIENT_VERSION: string = (
  JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string }
).version;
