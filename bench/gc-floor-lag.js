'use strict';
// How far the PerformanceObserver's post-GC reading (what leakhound's GC observer records)
// is from the true post-GC heap (v8.GCProfiler's afterGC statistics, taken inside the GC),
// for the same full GCs of a busy app; and how many GCs of every kind the profiler records
// meanwhile (what it costs). node bench/gc-floor-lag.js [SECONDS]
const v8 = require('v8');
const { PerformanceObserver } = require('perf_hooks');
const seconds = Number(process.argv[2] || 10);
const observed = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    if (e.detail.kind === 4) {
      observed.push({ heap: process.memoryUsage().heapUsed, lag: performance.now() - (e.startTime + e.duration) });
    }
  }
}).observe({ entryTypes: ['gc'] });
const profiler = new v8.GCProfiler();
profiler.start();
// A busy app: requests that allocate and keep a sliding window (so the old generation
// fills and full GCs happen), ~5,000 objects every 2 ms.
let win = [];
const timer = setInterval(() => {
  for (let k = 0; k < 5000; k++) win.push({ k, s: 'x' + k });
  if (win.length > 400000) win = [];
}, 2);
setTimeout(() => {
  clearInterval(timer);
  const stats = profiler.stop().statistics;
  const majors = stats.filter((s) => s.gcType === 'MarkSweepCompact');
  const kinds = {};
  for (const s of stats) kinds[s.gcType] = (kinds[s.gcType] || 0) + 1;
  const n = Math.min(majors.length, observed.length);
  const diffs = [];
  for (let i = 0; i < n; i++) diffs.push(observed[i].heap - majors[i].afterGC.heapStatistics.usedHeapSize);
  const lags = observed.slice(0, n).map((o) => o.lag).sort((a, b) => a - b);
  const sorted = [...diffs].sort((a, b) => a - b);
  const med = (xs) => xs[Math.floor(xs.length / 2)];
  const mb = (b) => (b / 1048576).toFixed(2) + ' MB';
  const floors = majors.slice(0, n).map((m) => m.afterGC.heapStatistics.usedHeapSize);
  console.log(JSON.stringify({
    node: process.version,
    seconds,
    full_gcs: n,
    gcs_recorded_by_the_profiler: kinds,
    true_floor_median: mb(med([...floors].sort((a, b) => a - b))),
    observer_minus_true_median: mb(med(sorted)),
    observer_minus_true_max: mb(sorted[sorted.length - 1]),
    read_lag_ms_median: med(lags).toFixed(2),
    read_lag_ms_max: lags[lags.length - 1].toFixed(2),
  }, null, 1));
}, seconds * 1000);
