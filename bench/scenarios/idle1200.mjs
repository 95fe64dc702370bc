// Many plain (`sleep`) and protocol workers idle, vigild and the floor side by side;
// then /metrics scraped with those workers, against a bare server sending the same body.
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BENCH, LineProcess, scratch } from "../lib/proc.mjs";
import { RUNNERS } from "../lib/runners.mjs";
import { CLK_TCK, last, now, procStat, round, sampleCpu, sleep, summary } from "../lib/util.mjs";

/** `count` sequential GETs on one keep-alive connection, 50 ms apart: ms each, the body, pid's CPU ms per scrape. */
async function scrapeMany(url, count, pid) {
  const { Agent, request } = await import("node:http");
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const get = () =>
    new Promise((resolvePromise, reject) => {
      const t0 = now();
      const req = request(url, { agent }, (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => resolvePromise({ ms: now() - t0, body: Buffer.concat(chunks).toString("utf8"), status: res.statusCode }));
      });
      req.on("error", reject);
      req.end();
    });
  let body = "";
  for (let i = 0; i < 3; i++) body = (await get()).body; // warm up
  const ms = [];
  const ticks0 = procStat(pid).ticks;
  for (let i = 0; i < count; i++) {
    const r = await get();
    if (r.status !== 200) throw new Error(`GET ${url}: ${r.status}`);
    ms.push(r.ms);
    body = r.body;
    await sleep(50);
  }
  const cpuMsPer = (((procStat(pid).ticks - ticks0) / CLK_TCK) * 1000) / count;
  agent.destroy();
  return { ms, body, cpuMsPer };
}

export default async function idle1200(ctx) {
  const { C, say, results } = ctx;
  const P = C.bigPlain;
  const Q = C.bigProto;
  const sc = (results.scenarios.idle1200 = { plain: P, protocol: Q, windowMs: C.idleWindowMs });
  const spec = { programs: [{ name: "plain", command: ["sleep", "1000000"], count: P }, { name: "py", args: [], count: Q }] };
  const up = [];
  let serve;
  let bodyDir;
  try {
    const v = await RUNNERS.v.workers(spec);
    up.push(v);
    await v.ready(300_000);
    const f = await RUNNERS.f.workers(spec);
    up.push(f);
    await f.ready(300_000);
    say(`idle1200: vigild and the floor up with ${P} plain + ${Q} protocol workers each; ${C.idleWindowMs / 1000} s window`);
    await sleep(C.idleSettleMs);
    const s = (sc.samples = await sampleCpu({ vigil: v.pid, floor: f.pid }, C.idleWindowMs, C.idleParts));
    say(`idle1200: CPU % vigil ${round(s.vigil.wholeWindowCpu, 3)}, floor ${round(s.floor.wholeWindowCpu, 3)}; RSS vigil ${round(last(s.vigil.rssMiB))} MiB`);

    // Scrapes: vigild's /metrics, then a static server with the same body.
    const vigilScrape = await scrapeMany(await v.metricsUrl(), C.scrapes, v.pid);
    bodyDir = scratch("scrape");
    const bodyFile = join(bodyDir, "metrics.txt");
    writeFileSync(bodyFile, vigilScrape.body);
    serve = new LineProcess(process.execPath, [join(BENCH, "serve.mjs"), bodyFile], { env: { PATH: process.env.PATH } });
    serve.name = "serve";
    const addr = await serve.waitFor((e) => typeof e.address === "string", 10_000, "the address");
    const floorScrape = await scrapeMany(addr.address, C.scrapes, serve.pid);
    sc.scrape = {
      workers: P + Q,
      bytes: vigilScrape.body.length,
      vigilMs: vigilScrape.ms,
      vigilCpuMsPerScrape: vigilScrape.cpuMsPer,
      floorMs: floorScrape.ms,
      floorCpuMsPerScrape: floorScrape.cpuMsPer,
    };
    say(`scrape: vigild median ${round(summary(vigilScrape.ms).median, 2)} ms (CPU ${round(vigilScrape.cpuMsPer, 2)} ms/scrape, ${vigilScrape.body.length} bytes), static server ${round(summary(floorScrape.ms).median, 2)} ms`);
  } finally {
    for (const r of up) await r.end();
    if (serve) await serve.kill();
    if (bodyDir) rmSync(bodyDir, { recursive: true, force: true });
  }
  const s = sc.samples;
  ctx.addRow({
    scenario: `idle: ${P} plain + ${Q} protocol workers, ${C.idleWindowMs / 1000} s`,
    figure: "supervisor CPU, % of one core",
    vigil: s.vigil.cpu,
    baseline: s.floor.cpu,
    target: { max: 1 },
    digits: 3,
    note: `whole window: vigil ${round(s.vigil.wholeWindowCpu, 3)} %, floor ${round(s.floor.wholeWindowCpu, 3)} %; peers not run at this size`,
  });
  ctx.addRow({ scenario: `idle: ${P} plain + ${Q} protocol workers`, figure: "supervisor RSS, MiB", vigil: s.vigil.rssMiB, baseline: s.floor.rssMiB, target: { max: 80 } });
  if (sc.scrape) {
    ctx.addRow({
      scenario: `scrape /metrics with ${P + Q} workers`,
      figure: "time per scrape, ms",
      vigil: sc.scrape.vigilMs,
      baseline: sc.scrape.floorMs,
      target: { max: 20 },
      digits: 2,
      note: `${C.scrapes} sequential GETs on one keep-alive connection, 50 ms apart; vigild CPU ${round(sc.scrape.vigilCpuMsPerScrape, 2)} ms per scrape; baseline: a bare node:http server sending the same ${sc.scrape.bytes} bytes`,
    });
  }
}
