// The cost of worker output: one worker printing 100-byte lines as fast as it
// can (bench/workers/py_flood.py). How many lines per second reach the log,
// what the supervisor spends per MiB it carries, and its RSS while it does.
//
//   without journald: each runner's flood() (bench/lib/runners.mjs): vigild
//     logs each line to its stdout, a pipe read by a plain line counter
//     (bench/lib/count_lines.py); the floor is the worker writing straight into
//     that same reader; PM2 and supervisord write the output to their log files.
//   under journald (a real systemd in a container): vigild hands each worker
//     its own journal stream (systemd-cat) and is out of the path; the floor
//     is the same worker as a plain systemd service.
import { LINE_BYTES } from "../lib/proc.mjs";
import { RUNNERS } from "../lib/runners.mjs";
import { bootContainer, containerUnavailable } from "../lib/container.mjs";
import { CLK_TCK, now, poll, procStat, round, rssKiB, sleep, summary } from "../lib/util.mjs";

const MiB = 1024 * 1024;

/** Measures a running flood over a window: lines written and reached, the supervisor's (`pid`) CPU and RSS, the reader's CPU. */
async function measure(flood, C) {
  const { pid, readerPid } = flood;
  const written = () => flood.written();
  const reached = () => flood.reached();
  await poll(() => written() > 0, 30_000, "the worker's first lines");
  await sleep(C.warmMs);
  const ticks = (p) => (p ? procStat(p)?.ticks ?? NaN : NaN);
  const t0 = now();
  const w0 = written();
  const r0 = reached();
  const c0 = ticks(pid);
  const rc0 = ticks(readerPid);
  let rss = 0;
  const rssStart = pid ? rssKiB(pid) / 1024 : NaN;
  while (now() - t0 < C.windowMs) {
    await sleep(250);
    if (pid) rss = Math.max(rss, rssKiB(pid) / 1024);
  }
  const t1 = now();
  const w1 = written();
  const r1 = reached();
  const cpuMs = ((ticks(pid) - c0) / CLK_TCK) * 1000;
  const readerCpuMs = ((ticks(readerPid) - rc0) / CLK_TCK) * 1000;
  const s = (t1 - t0) / 1000;
  const reachedMiB = ((r1 - r0) * LINE_BYTES) / MiB;
  return {
    seconds: s,
    writtenPerS: (w1 - w0) / s,
    reachedPerS: (r1 - r0) / s,
    cpuMsPerMiB: cpuMs / reachedMiB,
    cpuPct: (cpuMs / 10) / s,
    readerCpuMsPerMiB: readerCpuMs / reachedMiB,
    rssMiB: pid ? rss : NaN,
    rssStartMiB: rssStart,
  };
}

// ---------------------------------------------------------------- under journald

/** Reads a counter file in the container; the time is the middle of the exec. */
async function containerCounter(c, path) {
  const t0 = now();
  const r = await c.exec(["cat", path]);
  return { at: (t0 + now()) / 2, n: Number(r.stdout.trim()) || 0 };
}

async function containerTicks(c, pid) {
  const s = await c.run(["cat", `/proc/${pid}/stat`]);
  const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
  return Number(f[11]) + Number(f[12]);
}

async function containerRssMiB(c, pid) {
  return Number(/^VmRSS:\s+(\d+)/m.exec(await c.run(["cat", `/proc/${pid}/status`]))?.[1]) / 1024;
}

/** Lines/s through the journal stream of a running flood, read from its counter; vigild's CPU and RSS when pid is given. */
async function measureInContainer(c, countFile, pid, C) {
  const until = now() + 30_000;
  while ((await containerCounter(c, countFile)).n === 0) {
    if (now() > until) throw new Error(`output: no lines counted in ${countFile} in the container`);
    await sleep(100);
  }
  await sleep(C.warmMs);
  const a = await containerCounter(c, countFile);
  const t0 = pid ? await containerTicks(c, pid) : 0;
  let rss = 0;
  while (now() - a.at < C.windowMs) {
    await sleep(500);
    if (pid) rss = Math.max(rss, await containerRssMiB(c, pid));
  }
  const b = await containerCounter(c, countFile);
  const t1 = pid ? await containerTicks(c, pid) : 0;
  const s = (b.at - a.at) / 1000;
  const mib = ((b.n - a.n) * LINE_BYTES) / MiB;
  const cpuMs = ((t1 - t0) / CLK_TCK) * 1000;
  return { seconds: s, reachedPerS: (b.n - a.n) / s, cpuMsPerMiB: pid ? cpuMs / mib : NaN, cpuPct: pid ? cpuMs / 10 / s : NaN, rssMiB: pid ? rss : NaN };
}

async function journaldRuns(c, C, say, into) {
  const flood = "/src/bench/workers/py_flood.py";
  // journald's per-unit rate limit (10,000 lines in 30 s by default) would cap both at the same tiny rate.
  // The unit's start limit (3 a minute) would refuse the bench's repetitions.
  await c.writeFile("/etc/systemd/system/vigil.service.d/bench-log.conf", "[Unit]\nStartLimitIntervalSec=0\n[Service]\nLogRateLimitIntervalSec=0\n");
  await c.writeFile(
    "/etc/vigil/vigil.yaml",
    JSON.stringify({
      metrics: { listen: "127.0.0.1:0" },
      programs: { flood: { command: ["python3", flood], protocol: "off", env: { FLOOD_COUNT_FILE: "/run/vigil/flood.count" } } },
    }),
  );
  await c.run(["systemctl", "daemon-reload"]);
  for (let rep = 0; rep < C.reps; rep++) {
    for (const sys of rep % 2 ? ["v", "f"] : ["f", "v"]) {
      if (sys === "f") {
        const unit = `bench-flood-${rep}`;
        await c.run(["systemd-run", `--unit=${unit}`, "-p", "LogRateLimitIntervalSec=0", "--setenv=FLOOD_COUNT_FILE=/run/bench-flood.count", "python3", flood]);
        try {
          into.f.push(await measureInContainer(c, "/run/bench-flood.count", null, C));
        } finally {
          await c.exec(["systemctl", "stop", unit], { timeoutMs: 60_000 });
          await c.exec(["rm", "-f", "/run/bench-flood.count"]);
        }
      } else {
        await c.run(["systemctl", "start", "vigil.service"], { timeoutMs: 120_000 });
        try {
          const pid = Number((await c.run(["systemctl", "show", "-p", "MainPID", "--value", "vigil.service"])).trim());
          const r = await measureInContainer(c, "/run/vigil/flood.count", pid, C);
          // Whose lines the journal got: the worker's own stream says "flood/0".
          const tail = await c.run(["journalctl", "-u", "vigil.service", "-n", "100", "-o", "json", "--no-pager"]);
          const ids = tail.trim().split("\n").map((l) => JSON.parse(l).SYSLOG_IDENTIFIER);
          r.identifier = ids.includes("flood/0") ? "flood/0" : ids[ids.length - 1];
          into.v.push(r);
        } finally {
          await c.exec(["systemctl", "stop", "vigil.service"], { timeoutMs: 120_000 });
        }
      }
      const r = into[sys][into[sys].length - 1];
      say(`output journald rep ${rep + 1} ${sys}: ${round(r.reachedPerS)} lines/s${sys === "v" ? `, vigild ${round(r.cpuMsPerMiB, 2)} ms CPU/MiB, RSS ${round(r.rssMiB)} MiB, identifier ${r.identifier}` : ""}`);
    }
  }
}

export default async function outputCost(ctx) {
  const { QUICK, say, results, peerSkip } = ctx;
  const C = QUICK ? { reps: 3, warmMs: 500, windowMs: 2000 } : { reps: 3, warmMs: 2000, windowMs: 10_000 };
  const sc = (results.scenarios.output = { ...C, lineBytes: LINE_BYTES, pipe: { f: [], v: [], p: [], s: [] }, journald: { f: [], v: [] } });
  const keys = ctx.order(0);
  for (let rep = 0; rep < C.reps; rep++) {
    for (const k of ctx.order(rep)) {
      const flood = await RUNNERS[k].flood();
      let r;
      try {
        r = await measure(flood, C);
        Object.assign(r, await flood.extra());
      } finally {
        await flood.end();
      }
      sc.pipe[k].push(r);
      say(
        `output rep ${rep + 1} ${k}: ${round(r.reachedPerS)} lines/s reached the log (worker wrote ${round(r.writtenPerS)}/s)${Number.isFinite(r.cpuMsPerMiB) ? `, supervisor ${round(r.cpuMsPerMiB, 2)} ms CPU/MiB (${round(r.cpuPct)} %), RSS ${round(r.rssMiB)} MiB` : ""}${r.droppedLines !== undefined ? `, vigild dropped ${round(r.droppedLines)} lines in all` : ""}`,
      );
    }
  }
  const why = ctx.withContainer ? await containerUnavailable() : "not run in QUICK mode (BENCH_CONTAINER=1 runs it)";
  if (why) {
    sc.journald = why;
    say(`output: journald part skipped: ${why}`);
  } else {
    const c = await bootContainer(say);
    try {
      await journaldRuns(c, C, say, sc.journald);
    } finally {
      await c.stop();
    }
  }

  const pick = (sys, f) => (sc.pipe[sys].length ? sc.pipe[sys].map((r) => r[f]) : sys === "p" ? peerSkip.pm2 : peerSkip.sup);
  const med = (sys, f) => round(summary(sc.pipe[sys].map((r) => r[f])).median, 2);
  ctx.addRow({
    scenario: "output: a worker printing 100-byte lines flat out, no journald",
    figure: "lines/s reaching the log",
    vigil: pick("v", "reachedPerS"),
    baseline: pick("f", "reachedPerS"),
    target: { minRatio: 0.5 },
    pm2: pick("p", "reachedPerS"),
    sup: pick("s", "reachedPerS"),
    digits: 0,
    note: `floor: the worker's stdout straight into a plain line counter (bench/lib/count_lines.py), i.e. what the worker can print; vigil: vigild's log (one JSON entry per line) on its stdout, a pipe to that same counter; PM2 and supervisord: their log files. ${C.windowMs / 1000} s windows after ${C.warmMs / 1000} s. The worker printed (median lines/s): floor ${med("f", "writtenPerS")}, vigil ${med("v", "writtenPerS")}${keys.includes("p") ? `, PM2 ${med("p", "writtenPerS")}` : ""}${keys.includes("s") ? `, supervisord ${med("s", "writtenPerS")}` : ""}; vigild dropped past its 1 MiB budget (lines, whole runs): ${sc.pipe.v.map((r) => round(r.droppedLines)).join(", ")}`,
  });
  ctx.addRow({
    scenario: "output: a worker printing flat out, no journald",
    figure: "supervisor CPU per MiB carried, ms",
    vigil: pick("v", "cpuMsPerMiB"),
    baseline: null,
    target: { info: true },
    pm2: pick("p", "cpuMsPerMiB"),
    sup: pick("s", "cpuMsPerMiB"),
    digits: 2,
    note: `utime+stime of vigild, PM2's God daemon, supervisord over the window, per MiB that reached the log; CPU % of one core: vigil ${med("v", "cpuPct")}${keys.includes("p") ? `, PM2 ${med("p", "cpuPct")}` : ""}${keys.includes("s") ? `, supervisord ${med("s", "cpuPct")}` : ""}. No supervisor in the floor's path; its reader spends ${med("f", "readerCpuMsPerMiB")} ms per MiB (vigil's reader ${med("v", "readerCpuMsPerMiB")})`,
  });
  ctx.addRow({
    scenario: "output: a worker printing flat out, no journald",
    figure: "supervisor RSS while it floods (max), MiB",
    vigil: pick("v", "rssMiB"),
    baseline: null,
    target: { info: true },
    pm2: pick("p", "rssMiB"),
    sup: pick("s", "rssMiB"),
    note: `VmRSS sampled every 250 ms over the window; at the window's start (after ${C.warmMs / 1000} s of flood): vigil ${med("v", "rssStartMiB")}${keys.includes("p") ? `, PM2 ${med("p", "rssStartMiB")}` : ""}${keys.includes("s") ? `, supervisord ${med("s", "rssStartMiB")}` : ""} MiB. vigild holds at most 1 MiB of a worker's output and drops the rest with a count`,
  });
  if (typeof sc.journald === "object") {
    const j = sc.journald;
    const jm = (sys, f) => round(summary(j[sys].map((r) => r[f])).median, 2);
    ctx.addRow({
      scenario: "output under journald (real systemd): a worker printing flat out",
      figure: "lines/s reaching journald",
      vigil: j.v.map((r) => r.reachedPerS),
      baseline: j.f.map((r) => r.reachedPerS),
      target: { minRatio: 0.5 },
      pm2: "-",
      sup: "-",
      digits: 0,
      note: `floor: the same worker as a plain systemd service (systemd-run, stdout to the journal); vigil: vigil.service with the worker on its own journal stream (systemd-cat, identifier ${j.v[0]?.identifier}). Both with LogRateLimitIntervalSec=0; ${C.windowMs / 1000} s windows, the worker's own count of lines written to the stream. vigild meanwhile: ${jm("v", "cpuMsPerMiB")} ms CPU per MiB (${jm("v", "cpuPct")} % of a core), RSS ${jm("v", "rssMiB")} MiB`,
    });
  }
}
