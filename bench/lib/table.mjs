// The bench's table: each scenario's figures as rows (median, p99 or max of
// the samples, ratio to the floor, the verdict against the target),
// printed as one markdown table with the notes under it.
import { round, summary } from "./util.mjs";

/** A scenario's figures as one row of the table: statistics, ratio, verdict. A peer that was not run shows `peerSkip`'s reason. */
export function makeRow(r, peerSkip) {
  const stat = r.stat ?? "median";
  const vs = Array.isArray(r.vigil) ? summary(r.vigil) : null;
  const bs = Array.isArray(r.baseline) ? summary(r.baseline) : null;
  const vv = vs?.[stat];
  const bv = bs?.[stat];
  const ratio = Number.isFinite(vv) && Number.isFinite(bv) && bv > 0 ? vv / bv : NaN;
  const t = r.target;
  let ok;
  let targetText;
  // A peer that was not run shows why.
  if (Array.isArray(r.pm2) && r.pm2.length === 0) r.pm2 = peerSkip.pm2 ?? "-";
  if (Array.isArray(r.sup) && r.sup.length === 0) r.sup = peerSkip.sup ?? "-";
  const pm2s = Array.isArray(r.pm2) ? summary(r.pm2) : null;
  if (t.ratio !== undefined) {
    ok = ratio <= t.ratio;
    targetText = `<= ${t.ratio} x floor`;
  } else if (t.minRatio !== undefined) {
    ok = ratio >= t.minRatio;
    targetText = `>= ${t.minRatio} x floor`;
  } else if (t.max !== undefined) {
    ok = vv <= t.max;
    targetText = `<= ${t.max}`;
    if (t.belowPm2) {
      targetText += ", < PM2";
      if (pm2s) ok = ok && vv < pm2s[stat];
    }
    if (t.belowPeers) {
      // Ahead of every peer that ran: fewer, or none where none lost any.
      targetText += ", <= every peer";
      const peers = [r.pm2, r.sup, ...Object.values(r.others ?? {})].filter(Array.isArray).map((xs) => summary(xs)[stat]);
      ok = ok && peers.every((p) => vv <= p);
    }
  } else if (t.info) {
    ok = true;
    targetText = "(information)";
  } else {
    ok = t.works;
    targetText = "all work";
  }
  // vigil's side not run here (e.g. no container in QUICK mode): no verdict.
  const skipped = !Array.isArray(r.vigil);
  if (skipped) targetText += " (not measured)";
  return {
    scenario: r.scenario,
    figure: r.figure,
    stat,
    vigil: vs ?? (typeof r.vigil === "string" ? r.vigil : null),
    skipped,
    baseline: bs,
    ratio,
    target: targetText,
    pm2: pm2s ?? r.pm2 ?? null,
    supervisord: Array.isArray(r.sup) ? summary(r.sup) : r.sup ?? null,
    others: r.others ? Object.fromEntries(Object.entries(r.others).map(([k, v]) => [k, Array.isArray(v) ? summary(v) : v ?? null])) : null,
    ok: Boolean(ok),
    note: r.note ?? null,
    digits: r.digits ?? 1,
  };
}

function cell(x, stat, digits) {
  if (x === null || x === undefined) return "-";
  if (typeof x === "string") return x;
  const fmt = (v) => (Number.isFinite(v) ? String(round(v, digits)) : "n/a");
  const head = stat === "p99" ? `p99 ${fmt(x.p99)}` : stat === "max" ? `max ${fmt(x.max)}` : fmt(x.median);
  return `${head} [${fmt(x.min)}-${fmt(x.max)}] n=${x.n}`;
}

export function printTable(rows) {
  // A last column for the peers only some scenarios have (gunicorn's own HUP, vigil without vigil.socket).
  const withOthers = rows.some((r) => r.others);
  const head = ["scenario", "figure", "vigil", "baseline (floor)", "ratio", "target", "PM2", "supervisord", "ok?", ...(withOthers ? ["others"] : [])];
  const body = rows.map((r) => [
    r.scenario,
    r.figure,
    cell(r.vigil, r.stat, r.digits),
    cell(r.baseline, r.stat, r.digits),
    Number.isFinite(r.ratio) ? `${round(r.ratio, 2)}` : "n/a",
    r.target,
    cell(r.pm2, r.stat, r.digits),
    cell(r.supervisord, r.stat, r.digits),
    r.skipped ? "-" : r.ok ? "ok" : "MISS",
    ...(withOthers ? [r.others ? Object.entries(r.others).map(([k, v]) => `${k}: ${cell(v, r.stat, r.digits)}`).join("; ") : ""] : []),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => String(b[i]).length)));
  const line = (cols) => "| " + cols.map((c, i) => String(c).padEnd(widths[i])).join(" | ") + " |";
  const out = [line(head), "|" + widths.map((w) => "-".repeat(w + 2)).join("|") + "|", ...body.map(line)];
  process.stdout.write("\n" + out.join("\n") + "\n\n");
  process.stdout.write("values: median [min-max] n=repetitions (p99 or max where marked); ms unless the figure says otherwise; ratio = vigil / floor (or vigil / its own steady figure where the baseline says so), same statistic\n");
  rows.forEach((r, i) => r.note && process.stdout.write(`  ${i + 1}. ${r.scenario}: ${r.note}\n`));
}
