'use strict';
// A long-lived app holding a realistic heap, for `bench/run.py --capture` (snapshot capture overhead).
//   node --expose-gc --inspect-port=127.0.0.1:0 bench/capture-app.js UNITS
// Builds a world of UNITS "customers" like ../shared/bench/gen-heap.js (same classes, same
// seeded values: ≈ 4 KB of snapshot per unit), prints one JSON line {ready, pid, units, ...}
// on stdout, then waits. It opens no port of its own; the inspector only opens when a
// debugger sends SIGUSR1 (on 127.0.0.1, the port from --inspect-port; 0 = any free port).
//
// Commands, one per line on stdin, each answered by one JSON line on stdout:
//   snap PATH     global.gc() twice (timed: gc_ms), then v8.writeHeapSnapshot(PATH) (timed:
//                 write_ms), like the admin endpoint of ../shared/scenarios/admin.js
//   nogc PATH     v8.writeHeapSnapshot(PATH) alone (write_ms)
//   gcstats       after 50 ms, the GCs seen since the last gcstats: {kind: {count, ms}}
//   mem           global.gc(), then process.memoryUsage()
//   exit          exit 0
// Every reply carries heap_used (bytes, after the command). SIGUSR2 = `snap` to
// ./capture-<pid>-<n>.heapsnapshot (for use by hand). Timings: process.hrtime around each call.
const v8 = require('v8');
const fs = require('fs');
const readline = require('readline');

const UNITS = Number(process.argv[2] || 25000);
const CITIES = ['Berlin', 'Paris', 'Lisbon', 'Oslo', 'Rome', 'Madrid', 'Vienna', 'Prague', 'Warsaw', 'Dublin'];
const TIERS = ['free', 'pro', 'enterprise'];
let seed = 42; const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);

// ---- the world of ../shared/bench/gen-heap.js (copied: that folder is read-only) ----
class LineItem { constructor(j) { this.sku = 'SKU-' + (j % 500); this.qty = 1 + (j % 5); this.price = rnd() * 100; } }
class Order {
  constructor(customer, j) {
    this.customer = customer;
    this.items = [new LineItem(j), new LineItem(j + 1)];
    this.total = this.items.reduce((s, x) => s + x.qty * x.price, 0);
    this.createdAt = new Date(1.7e12 + j * 1000);
    this.status = j % 7 === 0 ? 'refunded' : 'paid';
  }
}
class Customer {
  constructor(i) {
    this.id = i;
    this.name = 'customer-' + i;
    this.email = `c${i}@example.com`;
    this.tier = TIERS[i % 3];
    this.address = { street: `${i} Main Street`, city: CITIES[i % 10], zip: 10000 + (i % 90000) };
    this.tags = ['segment-' + (i % 50), TIERS[i % 3]];
    this.orders = [0, 1, 2].map((k) => new Order(this, i * 3 + k));
    this.note = this.name + ' <' + this.email + '>';             // cons string
    this.describe = () => `${this.name} (${this.tier}) ${this.orders.length} orders`;
  }
}

const world = { customers: [], byId: new Map(), byEmail: new Map(), segments: new Map(), blobs: [] };
globalThis.__world = world;
const t0 = Date.now();
for (let i = 0; i < UNITS; i++) {
  const c = new Customer(i);
  world.customers.push(c);
  world.byId.set(i, c);
  world.byEmail.set(c.email, c);
  if (i % 10 === 0) {
    c.visited = new Set([i, i + 1, i + 2]);
    c.avatar = new Uint8Array(32);
  }
  if (i % 100 === 0) world.blobs.push(Array.from({ length: 256 }, (_, k) => k * 0.5 + i));
  const seg = c.tags[0];
  let s = world.segments.get(seg); if (!s) world.segments.set(seg, (s = [])); s.push(c);
}
const buildMs = Date.now() - t0;
// ---- end of the copied world ----

const ms = (t) => Number(process.hrtime.bigint() - t) / 1e6;
const round = (x) => Math.round(x * 10) / 10;
const gc = () => { if (typeof global.gc !== 'function') throw new Error('run node with --expose-gc'); global.gc(); };
const reply = (obj) => process.stdout.write(JSON.stringify({ ...obj, heap_used: process.memoryUsage().heapUsed }) + '\n');
const sizeOf = (file) => { try { return fs.statSync(file).size; } catch { return null; } };

function snap(file, withGc) {
  let gcMs = 0;
  if (withGc) { const g = process.hrtime.bigint(); gc(); gc(); gcMs = ms(g); }
  const w = process.hrtime.bigint();
  const out = v8.writeHeapSnapshot(file);
  return { file: out, gc_ms: round(gcMs), write_ms: round(ms(w)), bytes: sizeOf(out) };
}

// GCs seen by a PerformanceObserver since the last `gcstats` (any cause: gc(), the inspector's
// HeapProfiler.collectGarbage, the GCs V8 runs inside a heap snapshot, allocation).
const { PerformanceObserver, constants: perf } = require('perf_hooks');
const KINDS = { [perf.NODE_PERFORMANCE_GC_MAJOR]: 'major', [perf.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [perf.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental', [perf.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb' };
let gcSeen = {};
const gcObserver = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = KINDS[(e.detail && e.detail.kind) ?? e.kind] || 'other';
    const k = (gcSeen[kind] = gcSeen[kind] || { count: 0, ms: 0 });
    k.count++; k.ms = round(k.ms + e.duration);
  }
});
gcObserver.observe({ entryTypes: ['gc'] });

let sigCount = 0;
process.on('SIGUSR2', () => {
  const r = snap(`capture-${process.pid}-${++sigCount}.heapsnapshot`, true);
  reply({ cmd: 'SIGUSR2', ...r });
});

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const [cmd, ...rest] = line.trim().split(' ');
  const arg = rest.join(' ');
  try {
    if (cmd === 'snap' || cmd === 'nogc') reply({ cmd, ...snap(arg, cmd === 'snap') });
    else if (cmd === 'mem') { gc(); reply({ cmd, mem: process.memoryUsage() }); }
    else if (cmd === 'gcstats') setTimeout(() => { const gcs = gcSeen; gcSeen = {}; reply({ cmd, gcs }); }, 50);
    else if (cmd === 'exit') process.exit(0);
    else reply({ cmd, error: `unknown command ${JSON.stringify(cmd)}` });
  } catch (e) {
    reply({ cmd, error: String(e && e.message || e) });
  }
});
rl.on('close', () => process.exit(0)); // the harness went away: do not linger

gc(); gc();
reply({ ready: true, pid: process.pid, units: UNITS, build_ms: buildMs, node: process.version });
