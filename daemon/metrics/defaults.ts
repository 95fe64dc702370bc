// prom-client's default process metrics, minus the event-loop-lag set: that
// one samples with a 10 ms timer, waking an idle vigild 100 times a second
// (vigil_event_loop_lag_seconds is measured from timers vigild runs anyway,
// at no cost while idle); and minus the
// active handles and resources counts, which walk every handle at each
// scrape (with 1,200 workers, 40 % of a scrape's time, measured by
// make bench). The list is prom-client 15's lib/defaultMetrics.js.
import { createRequire } from "node:module";
import type { Registry } from "prom-client";

type DefaultMetric = (register: Registry, config: Record<string, unknown>) => void;

const require = createRequire(import.meta.url);
const MODULES = [
  "processCpuTotal",
  "processStartTime",
  "osMemoryHeap",
  "processOpenFileDescriptors",
  "processMaxFileDescriptors",
  "processRequests",
  "heapSizeAndUsed",
  "heapSpacesSizeAndUsed",
  "version",
  "gc",
];

// prom-client's defaults also include gauges named *_total, which promtool
// rejects (the suffix promises a counter); their unsuffixed twins stay.
const NONCONFORMING = ["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"];

export function registerDefaultMetrics(register: Registry): void {
  for (const name of MODULES) {
    const metric = require(`prom-client/lib/metrics/${name}.js`) as DefaultMetric;
    metric(register, {});
  }
  for (const name of NONCONFORMING) register.removeSingleMetric(name);
}
