// Prints the ratios of e2e/BENCHMARKS.md from the results of run.sh:
//
//   node e2e/compare/summary.mjs OUTDIR
//
// For each round: tandem ÷ Node for wrk's requests/s, user CPU per answered
// request and delivery p99 (bench.mjs and the Go client, 1000 sockets), RSS
// per socket (1000 and 10,000 sockets), and the missed deliveries of each
// server; then the median of the rounds.
import { existsSync, readFileSync } from "node:fs";

const out = process.argv[2];
if (!out) {
  console.error("usage: node e2e/compare/summary.mjs OUTDIR");
  process.exit(2);
}
const json = (f) => (existsSync(`${out}/${f}`) ? JSON.parse(readFileSync(`${out}/${f}`, "utf8")) : null);
const wrk = (f) => {
  if (!existsSync(`${out}/${f}`)) return null;
  const t = readFileSync(`${out}/${f}`, "utf8");
  if (/Non-2xx/.test(t)) return null; // a run with refusals is void
  const m = /Requests\/sec:\s+([\d.]+)/.exec(t);
  return m ? Number(m[1]) : null;
};
const cpu = (d) => (d && d.http.ok ? (d.server.cpu_user_s_load_and_drain * 1e6) / d.http.ok : null);
const full = (d) => d && d.sockets.connected === d.sockets.requested;
const measures = {
  "wrk POST /incr req/s": (s, r) => wrk(`wrk-${s}-${r}.txt`),
  "user CPU µs per request (bench.mjs, 1000 sockets)": (s, r) => cpu(json(`b1k-${s}-${r}.json`)),
  "delivery p99 ms (bench.mjs, 1000 sockets)": (s, r) => json(`b1k-${s}-${r}.json`)?.delivery.p99_ms ?? null,
  "user CPU µs per request (Go client)": (s, r) => cpu(json(`go1k-${s}-${r}.json`)),
  "delivery p99 ms (Go client)": (s, r) => json(`go1k-${s}-${r}.json`)?.delivery.p99_ms ?? null,
  "RSS bytes per socket, 1000 sockets": (s, r) => {
    const d = json(`b1k-${s}-${r}.json`);
    return full(d) ? d.server.bytes_per_socket : null;
  },
  "RSS bytes per socket, 10,000 sockets": (s, r) => {
    const d = json(`b10k-${s}-${r}.json`);
    return full(d) ? d.server.bytes_per_socket : null;
  },
};
const rounds = [];
for (let r = 1; existsSync(`${out}/wrk-tandem-${r}.txt`) || existsSync(`${out}/b1k-tandem-${r}.json`); r++) rounds.push(r);
const median = (v) => {
  const s = v.filter((x) => x != null).sort((a, b) => a - b);
  if (!s.length) return null;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const f = (x, d = 2) => (x == null ? "–" : x.toFixed(d));
console.log(`rounds: ${rounds.join(", ")}`);
for (const [name, get] of Object.entries(measures)) {
  const ratios = rounds.map((r) => {
    const t = get("tandem", r), n = get("node", r);
    return t != null && n != null && n > 0 ? t / n : null;
  });
  const ts = rounds.map((r) => get("tandem", r)), ns = rounds.map((r) => get("node", r));
  console.log(`${name}: ×${f(median(ratios))} (${ratios.map((x) => f(x)).join(", ")}); tandem ${ts.map((x) => f(x, 1)).join(", ")}; node ${ns.map((x) => f(x, 1)).join(", ")}`);
}
for (const kind of ["b1k", "go1k", "b10k"]) {
  const missed = ["tandem", "node"].map((s) => `${s} ${rounds.map((r) => json(`${kind}-${s}-${r}.json`)?.delivery.missed ?? "–").join("/")}`);
  console.log(`missed deliveries (${kind}): ${missed.join("; ")}`);
}
