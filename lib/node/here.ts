// Where the client's compiled modules are, whichever module system loaded
// them. The same sources build to ES modules (vigild's dist/, and the
// package's `import` entry) and to CommonJS (the package's `require` entry):
// `import.meta.url` is a syntax error in CommonJS and `__filename` is
// undefined in an ES module, so neither can be written in a source shared by
// both. V8's structured stack trace names this very file in either: a
// file: URL in an ES module, a path in CommonJS.

import { pathToFileURL } from "node:url";

function ownFile(): string {
  if (typeof __filename === "string") return __filename; // CommonJS: exact and cheap
  // eslint-disable-next-line @typescript-eslint/unbound-method -- saved to be put back, never called here
  const savedPrepare = Error.prepareStackTrace;
  const savedLimit = Error.stackTraceLimit;
  try {
    // The application may have set either (source-map-support, a limit of 0).
    Error.stackTraceLimit = 1;
    Error.prepareStackTrace = (_error, sites) => sites;
    const sites = new Error().stack as unknown as NodeJS.CallSite[];
    const name = sites[0]?.getFileName();
    if (name === undefined || name === null) throw new Error("vigil: cannot tell where the client's modules are");
    return name;
  } finally {
    Error.prepareStackTrace = savedPrepare;
    Error.stackTraceLimit = savedLimit;
  }
}

function toUrl(file: string): URL {
  return file.startsWith("file:") ? new URL(file) : pathToFileURL(file);
}

/** The directory of the client's modules, as a file: URL ending in "/". */
export const CLIENT_DIR_URL: URL = new URL(".", toUrl(ownFile()));
