// Layers that only point down: every module of daemon/ and lib/ sits in one
// layer of the table below and may import its own layer and the ones under
// it, never one above, and no import cycle may run through any of them.
// make test and make lint run it (node dist/scripts/check-layers.js); it
// prints each problem and exits 1. Tests may import anything: not checked.
//
// TypeScript, not a plain .mjs, so the type check and lint cover it and the
// unit tests import it like any module. No dependency-cruiser or madge: the
// table, an allow-list and a cycle search are this one small file, and the
// TypeScript compiler (already here) finds the imports.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, posix, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

export interface Layer {
  level: number;
  name: string;
  /** Why these modules sit here, in one line. */
  why: string;
  /** "dir/" holds everything under it, "dir/*.ts" the files directly in it, anything else is one file. */
  paths: readonly string[];
  /** Layers below this one that it still must not import. */
  mayNotImport?: readonly number[];
}

// Bottom to top. A file's own entry beats its directory's, a deeper
// directory beats a shallower one, and "dir/*.ts" comes last.
export const LAYERS: readonly Layer[] = [
  {
    level: 0,
    name: "clients",
    why: "what a worker imports (the wire protocol, the Node client): it must work without the daemon",
    paths: ["lib/protocol/", "lib/node/"],
  },
  {
    level: 1,
    name: "core",
    why: "vocabulary and pure logic without I/O: names, events, the clock, the daemon's own state machine",
    paths: ["daemon/core/", "daemon/clock/", "daemon/version.ts", "daemon/exit-codes.ts", "daemon/lifecycle.ts"],
  },
  {
    level: 2,
    name: "config",
    why: "what the operator wrote, checked; and the logger, whose format and level come from it",
    paths: ["daemon/config/", "daemon/log/logger.ts"],
  },
  {
    level: 3,
    name: "parts",
    why: "one thing each: a worker process, a listening socket, a message to systemd, a shutdown record",
    paths: ["daemon/worker/", "daemon/sockets/", "daemon/systemd/", "daemon/shutdown/"],
  },
  {
    level: 4,
    name: "supervisor",
    why: "programs of workers, the events that tell what they do, and control.ts: the state they show the front ends",
    paths: ["daemon/supervisor/", "daemon/control.ts"],
  },
  {
    level: 5,
    name: "observers",
    why: "readers of the supervisor's events: metrics, the log lines, the shutdown report collected from them",
    paths: ["daemon/metrics/", "daemon/log/", "daemon/shutdown/collect.ts"],
  },
  {
    level: 6,
    name: "dbus",
    why: "vigild on D-Bus: the service vigilctl calls, and systemd asked over the bus about vigild's own unit",
    paths: ["daemon/dbus/"],
  },
  {
    level: 7,
    name: "daemon",
    why: "vigild itself: wires every layer below, owns the process, its signals and its command line",
    paths: ["daemon/*.ts", "daemon/run/"],
  },
  {
    level: 8,
    name: "vigilctl",
    why: "a client of vigild over D-Bus: control.ts and the D-Bus types, never the daemon's own code",
    paths: ["daemon/ctl/"],
    mayNotImport: [7],
  },
];

// Upward imports tolerated for now (none today). An entry that no longer
// occurs is itself reported, so the list only shrinks.
export const KNOWN: readonly string[] = [];

/** Module path (relative to the repository, with "/") to the modules it imports. */
export type Graph = ReadonlyMap<string, readonly string[]>;

export function layerOf(path: string, layers: readonly Layer[] = LAYERS): Layer | undefined {
  let best: { layer: Layer; rank: number } | undefined;
  for (const layer of layers) {
    for (const pattern of layer.paths) {
      const rank = matchRank(pattern, path);
      if (rank > 0 && (best === undefined || rank > best.rank)) best = { layer, rank };
    }
  }
  return best?.layer;
}

/** 0: no match; higher is more specific. */
function matchRank(pattern: string, path: string): number {
  if (pattern.endsWith("/*.ts")) {
    const dir = pattern.slice(0, -"*.ts".length);
    return path.startsWith(dir) && !path.slice(dir.length).includes("/") && path.endsWith(".ts") ? 1 : 0;
  }
  if (pattern.endsWith("/")) return path.startsWith(pattern) ? 1 + pattern.length : 0;
  return path === pattern ? Number.MAX_SAFE_INTEGER : 0;
}

/** Every import cycle, each as the modules along it, the first repeated at the end. */
export function findCycles(graph: Graph): string[][] {
  // Tarjan's strongly connected components; one cycle is shown for each.
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];

  const visit = (node: string): void => {
    index.set(node, next);
    low.set(node, next);
    next += 1;
    stack.push(node);
    onStack.add(node);
    for (const to of graph.get(node) ?? []) {
      if (!graph.has(to)) continue;
      if (!index.has(to)) {
        visit(to);
        low.set(node, Math.min(low.get(node)!, low.get(to)!));
      } else if (onStack.has(to)) {
        low.set(node, Math.min(low.get(node)!, index.get(to)!));
      }
    }
    if (low.get(node) !== index.get(node)) return;
    const component = new Set<string>();
    for (;;) {
      const member = stack.pop()!;
      onStack.delete(member);
      component.add(member);
      if (member === node) break;
    }
    const selfLoop = (graph.get(node) ?? []).includes(node);
    if (component.size > 1 || selfLoop) cycles.push(cycleThrough(node, component, graph));
  };

  for (const node of [...graph.keys()].sort()) if (!index.has(node)) visit(node);
  return cycles;
}

/** A shortest path from `start` back to itself inside one component. */
function cycleThrough(start: string, component: ReadonlySet<string>, graph: Graph): string[] {
  const previous = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const node = queue.shift()!;
    for (const to of graph.get(node) ?? []) {
      if (!component.has(to)) continue;
      if (to === start) {
        const path = [start];
        for (let at = node; at !== start; at = previous.get(at)!) path.splice(1, 0, at);
        return [...path, start];
      }
      if (!previous.has(to)) {
        previous.set(to, node);
        queue.push(to);
      }
    }
  }
  return [start, start];
}

export interface Report {
  /** What fails the check. */
  problems: string[];
  /** Upward imports on the allow-list. */
  known: string[];
}

export function check(graph: Graph, layers: readonly Layer[] = LAYERS, known: readonly string[] = KNOWN): Report {
  const problems: string[] = [];
  const allowed: string[] = [];
  const seen = new Set<string>();
  const describe = (layer: Layer): string => `layer ${layer.level} ${layer.name}`;

  for (const [from, imports] of [...graph].sort(([a], [b]) => a.localeCompare(b))) {
    const fromLayer = layerOf(from, layers);
    if (fromLayer === undefined) {
      problems.push(`${from}: in no layer (add it to the table in scripts/check-layers.ts)`);
      continue;
    }
    for (const to of new Set(imports)) {
      const toLayer = layerOf(to, layers);
      const edge = `${from} -> ${to}`;
      if (toLayer === undefined) {
        problems.push(`${edge}: imports a module in no layer`);
        continue;
      }
      const upward = toLayer.level > fromLayer.level;
      const barred = fromLayer.mayNotImport?.includes(toLayer.level) ?? false;
      if (!upward && !barred) continue;
      const what = `${edge}: ${describe(fromLayer)} imports ${describe(toLayer)}${upward ? ", above it" : ", which it must not"}`;
      if (known.includes(edge)) {
        allowed.push(what);
        seen.add(edge);
      } else {
        problems.push(what);
      }
    }
  }
  for (const edge of known) {
    if (!seen.has(edge)) problems.push(`${edge}: on the allow-list but no longer a violation: remove it from KNOWN`);
  }
  for (const cycle of findCycles(graph)) problems.push(`import cycle: ${cycle.join(" -> ")}`);
  return { problems, known: allowed };
}

/** The modules under `dirs` of `root` and what each imports among the repository's files. */
export function readGraph(root: string, dirs: readonly string[] = ["daemon", "lib"]): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const dir of dirs) {
    for (const file of tsFiles(join(root, dir))) {
      const from = toPosix(relative(root, file));
      const { importedFiles } = ts.preProcessFile(readFileSync(file, "utf8"), true, true);
      const imports = importedFiles
        .map((ref) => ref.fileName)
        .filter((spec) => spec.startsWith("./") || spec.startsWith("../"))
        .map((spec) => posix.normalize(posix.join(posix.dirname(from), spec)).replace(/\.js$/, ".ts"));
      graph.set(from, imports);
    }
  }
  return graph;
}

function tsFiles(dir: string): string[] {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return tsFiles(path);
    return entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts") ? [path] : [];
  });
}

function toPosix(path: string): string {
  return path.split(sep).join("/");
}

function main(): void {
  // dist/scripts/check-layers.js -> the repository root.
  const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
  const graph = readGraph(root);
  const report = check(graph);
  for (const line of report.known) console.log(`known, being fixed: ${line}`);
  for (const line of report.problems) console.log(line);
  console.log(`layers: ${graph.size} modules, ${report.problems.length} problems, ${report.known.length} known violations`);
  if (report.problems.length > 0) process.exitCode = 1;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) main();
