// The metrics endpoint answers /metrics and /healthz and nothing else.
import { expect } from "chai";
import { Vigild, stopAll } from "../../helpers/vigild.js";

describe("metrics endpoint", function () {
  this.timeout(20_000);
  afterEach(stopAll);

  it("GET /metrics is Prometheus text, /healthz is 200 when running, anything else 404, POST 405", async () => {
    const v = new Vigild({ programs: { p: { command: ["sleep", "1000"] } } });
    await v.waitFor((e) => /^all 1 workers ready/.test(e.msg));
    const url = await v.metricsUrl();
    const metrics = await fetch(url);
    expect(metrics.status).to.equal(200);
    expect(metrics.headers.get("content-type")).to.match(/^text\/plain; version=0\.0\.4/);
    expect(await metrics.text()).to.match(/^# HELP vigil_workers /m);
    const health = await fetch(url.replace("/metrics", "/healthz"));
    expect(health.status).to.equal(200);
    expect(await health.text()).to.equal("1 of 1 workers ready\n");
    for (const path of ["/", "/metrics/extra", "/debug", "/healthz/x"]) {
      expect((await fetch(url.replace("/metrics", path))).status, path).to.equal(404);
    }
    expect((await fetch(url, { method: "POST" })).status).to.equal(405);
  });

  it("listens on loopback by default", async () => {
    const { parseConfig } = await import("../../../daemon/config/load.js");
    const config = parseConfig("programs:\n  p:\n    command: [sleep, '1']\n", "/x.yaml");
    expect(config.metrics.listen).to.deep.equal({ host: "127.0.0.1", port: 9850 });
  });
});
