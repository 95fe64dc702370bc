// A real systemd for the bench, booted in a throwaway nspawn container made
// from this host's /usr, through the system tests' own harness
// (dist/test/system/container.js over scripts/systemd/). The container shares
// the host's network, so wrk on the host reaches its services on 127.0.0.1.
// vigil is installed into it from this tree's dist/ (not the bench snapshot).
import { existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { REPO } from "./proc.mjs";
import { now, round, trackPid } from "./util.mjs";

const HARNESS = join(REPO, "dist/test/system/container.js");

async function harness() {
  return import(pathToFileURL(HARNESS).href);
}

/** Why no container can run here, or null. */
export async function containerUnavailable() {
  if (!existsSync(HARNESS)) return `${HARNESS} is missing (npx tsc -p .)`;
  return (await harness()).unavailableReason();
}

/** Boots a container and installs vigil into it; the caller must stop() it (finally). */
export async function bootContainer(say) {
  const t0 = now();
  const c = await (await harness()).start({ bootTimeoutMs: 120_000 });
  // Last resort for killEverything(): systemd-nspawn by its pid (stop() normally powers it off first).
  trackPid(c.nspawnPid);
  try {
    await c.install();
  } catch (err) {
    await c.stop();
    throw err;
  }
  say(`container ${c.machine} booted and vigil installed in ${round((now() - t0) / 1000)} s`);
  return c;
}
