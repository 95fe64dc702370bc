// vigild's lowered OOM score (OOMScoreAdjust= in its unit) is not handed to
// its workers: each is given back the kernel's default, by the spawn edge for
// workers of vigild's own user, by choom in front of setpriv for `user:` ones.
import { expect } from "chai";
import { CHOOM, oomScorePlan, readOomScoreAdj, withOomScore } from "../../../daemon/worker/oom-score.js";
import { program, rig } from "../../helpers/fake-supervision.js";

describe("workers' OOM score", () => {
  it("is left alone unless vigild's is below the kernel's default", () => {
    expect(oomScorePlan(null, false)).to.deep.equal({ kind: "inherit" });
    expect(oomScorePlan(0, false)).to.deep.equal({ kind: "inherit" });
    expect(oomScorePlan(300, true)).to.deep.equal({ kind: "inherit" });
    expect(oomScorePlan(-500, false)).to.deep.equal({ kind: "set-after-spawn", value: 0 });
    expect(oomScorePlan(-1000, true)).to.deep.equal({ kind: "choom", value: 0 });
  });

  it("choom runs the command as given, after --", () => {
    expect(withOomScore(["/usr/bin/setpriv", "--reuid=65534", "--", "app", "--flag"], 0)).to.deep.equal([
      CHOOM,
      "-n",
      "0",
      "--",
      "/usr/bin/setpriv",
      "--reuid=65534",
      "--",
      "app",
      "--flag",
    ]);
  });

  it("reads this process's own score from /proc", () => {
    expect(readOomScoreAdj("self")).to.be.a("number").within(-1000, 1000);
  });

  it("a worker spawned by a vigild at -500 is asked for 0; by a vigild at 0, nothing", () => {
    for (const [own, asked] of [
      [-500, 0],
      [0, null],
    ] as const) {
      const r = rig();
      r.host.ownOomScore = own;
      const p = program(r, "programs:\n  app:\n    command: [/bin/app]\n    instances: 2\n");
      p.start();
      r.clock.advance(0);
      expect(r.host.processes.map((proc) => proc.spec.oomScoreAdj), `vigild at ${own}`).to.deep.equal([asked, asked]);
      expect(r.host.processes.map((proc) => proc.spec.command[0])).to.deep.equal(["/bin/app", "/bin/app"]);
    }
  });
});
