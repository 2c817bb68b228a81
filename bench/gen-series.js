'use strict';
// gen-series.js: ONE node process builds a realistic heap of UNITS "customers" (the same model as
// ../shared/bench/gen-heap.js: about 4,000 bytes of snapshot per unit, so 122,000 units ≈ 500 MB)
// and writes the three snapshots of the three-snapshot technique, with a leak growing between them:
//
//   node --max-old-space-size=16384 --expose-gc bench/gen-series.js UNITS OUT_DIR
//
// OUT_DIR/baseline.heapsnapshot  the world, plus a warm-up step
// OUT_DIR/target.heapsnapshot    + one step: UNITS/50 LeakedSession objects pushed to a module-level
//                                array (each holds a request-like object, a 1 KiB Buffer slice and
//                                a closure), a bounded cache refilled, temporary objects churned
// OUT_DIR/final.heapsnapshot     + the same step again (the leak grows by the same amount)
// Deterministic (seeded PRNG). Prints one JSON line per snapshot: file, bytes, nodes, edges, ms.
const v8 = require('v8');
const fs = require('fs');
const path = require('path');

const UNITS = Number(process.argv[2]);
const OUT = process.argv[3];
if (!UNITS || !OUT) {
  console.error('usage: node --max-old-space-size=16384 --expose-gc gen-series.js UNITS OUT_DIR');
  process.exit(2);
}
if (!global.gc) { console.error('gen-series.js: run node with --expose-gc'); process.exit(2); }
fs.mkdirSync(OUT, { recursive: true });

const CITIES = ['Berlin', 'Paris', 'Lisbon', 'Oslo', 'Rome', 'Madrid', 'Vienna', 'Prague', 'Warsaw', 'Dublin'];
const TIERS = ['free', 'pro', 'enterprise'];
let seed = 42; const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);

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
    this.note = this.name + ' <' + this.email + '>';
    this.describe = () => `${this.name} (${this.tier}) ${this.orders.length} orders`;
  }
}
// The leak: one LeakedSession per simulated request, never removed.
class LeakedSession {
  constructor(n, customer) {
    this.n = n;
    this.customer = customer;
    this.request = { url: '/api/orders/' + n, headers: { 'user-agent': 'bench/' + (n % 10), 'x-request-id': 'req-' + n } };
    this.scratch = Buffer.alloc(1024, n & 0xff);
    this.onDone = () => this.n + this.request.url.length;
  }
}
class CacheEntry { constructor(k) { this.key = 'cache-' + k; this.value = { k, at: 1.7e12 + k }; } }

const world = { customers: [], byId: new Map(), byEmail: new Map(), segments: new Map(), blobs: [] };
globalThis.__world = world;
for (let i = 0; i < UNITS; i++) {
  const c = new Customer(i);
  world.customers.push(c);
  world.byId.set(i, c);
  world.byEmail.set(c.email, c);
  if (i % 10 === 0) { c.visited = new Set([i, i + 1, i + 2]); c.avatar = new Uint8Array(32); }
  if (i % 100 === 0) world.blobs.push(Array.from({ length: 256 }, (_, k) => k * 0.5 + i));
  const seg = c.tags[0];
  let s = world.segments.get(seg); if (!s) world.segments.set(seg, (s = [])); s.push(c);
}

const leaked = []; globalThis.__leaked = leaked;
const cache = new Map(); const CACHE_CAP = Math.max(100, Math.floor(UNITS / 100)); globalThis.__cache = cache;
let nextRequest = 0, nextKey = 0;
function step(requests) {
  for (let r = 0; r < requests; r++) {
    const n = nextRequest++;
    leaked.push(new LeakedSession(n, world.customers[(n * 7919) % UNITS]));
    if (cache.size >= CACHE_CAP) cache.delete(cache.keys().next().value);
    const e = new CacheEntry(nextKey++); cache.set(e.key, e);
    let tmp = []; for (let k = 0; k < 5; k++) tmp.push({ junk: k, s: 'tmp-' + ((n + k) % 100) }); tmp = null;
  }
}

const PER_STEP = Math.max(100, Math.floor(UNITS / 50));
function snap(tag) {
  gc(); gc();
  const file = path.join(OUT, tag + '.heapsnapshot');
  const t = Date.now();
  v8.writeHeapSnapshot(file);
  const ms = Date.now() - t;
  const fd = fs.openSync(file, 'r'); const buf = Buffer.alloc(4096); fs.readSync(fd, buf, 0, 4096, 0); fs.closeSync(fd);
  const head = buf.toString();
  console.log(JSON.stringify({ file, bytes: fs.statSync(file).size, nodes: Number(/"node_count":(\d+)/.exec(head)[1]),
    edges: Number(/"edge_count":(\d+)/.exec(head)[1]), leaked: leaked.length, cache: cache.size, writeMs: ms }));
}
step(Math.min(PER_STEP, 200));   // warm-up: code paths and shapes exist before the baseline
snap('baseline');
step(PER_STEP);
snap('target');
step(PER_STEP);
snap('final');
