'use strict';
// Run: taskset -c 0 node bench/gc-observer-cost.js (prints one JSON line: medians of 12 alternated runs).
// Cost of a gc PerformanceObserver per GC: the same allocation-heavy work with and
// without the observer, alternated; GCs counted by the observer in the "with" runs.
const { PerformanceObserver, performance } = require('perf_hooks');
function work(n) {
  let keep = 0;
  for (let r = 0; r < n; r++) {
    const items = [];
    for (let i = 0; i < 40; i++) items.push({ id: i, name: 'item-' + i, tags: ['a', 'b', String(i)] });
    keep += JSON.stringify(items).length;
  }
  return keep;
}
async function tick() { await new Promise((r) => setImmediate(r)); }
async function run(withObs, chunks) {
  let gcs = 0, obs = null;
  if (withObs) { obs = new PerformanceObserver((l) => { gcs += l.getEntries().length; }); obs.observe({ entryTypes: ['gc'] }); }
  const t0 = performance.now();
  for (let c = 0; c < chunks; c++) { work(200); await tick(); }
  const dt = performance.now() - t0;
  if (obs) obs.disconnect();
  await tick();
  return { dt, gcs };
}
(async () => {
  await run(false, 300);
  const off = [], on = [], g = [];
  for (let k = 0; k < 12; k++) {
    const a = await run(false, 300); const b = await run(true, 300);
    off.push(a.dt); on.push(b.dt); g.push(b.gcs);
  }
  const med = (x) => x.slice().sort((p, q) => p - q)[x.length >> 1];
  const ratios = on.map((x, i) => x / off[i]);
  console.log(JSON.stringify({ off_ms: med(off), on_ms: med(on), gcs: med(g), ratio_median: med(ratios),
    us_per_gc: (med(on) - med(off)) * 1000 / med(g), ratios: ratios.map((r) => +r.toFixed(3)) }));
})();
