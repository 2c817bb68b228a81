'use strict';
// make.js: generates the small heap snapshots of leakhound's parity corpus with the local node.
//
//   node tests/corpus/make.js OUT_DIR [NAME ...]
//
// NAME is one of the scenarios below (default: all). Each scenario runs in its own child process
// (`node --expose-gc -e SRC`, cwd = /, empty environment) that forces gc() and then calls
// v8.writeHeapSnapshot('/dev/fd/N') on a file the parent opened, so snapshots carry no host
// paths (not even OUT_DIR). Outputs (OUT_DIR/…):
//   idle, closures, collections, typed, weakmaps, internals, numeric, unreachable .heapsnapshot
//   pair-a-base / pair-a-current, pair-b-base / pair-b-current .heapsnapshot  (same process each)
//   series-1 / series-2 / series-3 .heapsnapshot                             (same process)
// Everything is deterministic except what V8/Node themselves vary (ids of embedder nodes,
// addresses, timer timing); no Math.random. `unreachable` is a real snapshot rewritten here: the
// edges into a small ring of objects are removed (node edge_count and header edge_count fixed).
// Each snapshot stays under ~6 MB. Prints one line per file: name, bytes, nodes, edges.
// The list of scenarios with descriptions is exported (require('./make.js').SCENARIOS) for regen.
const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');

// Prelude of every child: snap(file, opts) = two forced GCs, then the snapshot.
// The files are opened by the parent and inherited as fds 3, 4, …: the child runs in '/' and writes
// to /dev/fd/N, so no temp-dir path ends up in the snapshots and reruns make the same strings.
const prelude = (files) => `
'use strict';
const v8 = require('v8');
const __fd = ${JSON.stringify(Object.fromEntries(files.map((f, i) => [f + '.heapsnapshot', i + 3])))};
function snap(file, opts) { gc(); gc(); v8.writeHeapSnapshot('/dev/fd/' + __fd[file], opts); }
`;

// Each scenario: description (for the manifest/README), outputs (files written), src (child code).
const SCENARIOS = {
  idle: {
    description: 'an idle node process: nothing but what Node itself keeps (baseline of every other file)',
    outputs: ['idle'],
    src: `setTimeout(() => snap('idle.heapsnapshot'), 20);`,
  },

  closures: {
    description: 'closures and contexts: three closures sharing one context, nested contexts ' +
      '(outer -> middle -> inner), a closure whose context captures a 100,000-element array, ' +
      'a closure capturing nothing, a bound function with bound arguments, a generator and an async function',
    outputs: ['closures'],
    src: `
function makeCounter(start) {                  // three closures share one context
  let count = start; const label = 'counter-' + start;
  return { inc: () => ++count, get: () => count, label: () => label };
}
function outer(a) {                            // nested contexts: inner sees middle's and outer's
  const x = { a };
  return function middle(b) {
    const y = [b, b + 1];
    return function inner(c) { return x.a + y[0] + c; };
  };
}
function makeBigHolder() {                     // the context keeps a big array alive
  const bigArray = new Array(100000).fill(7);
  const note = 'holds ' + bigArray.length;
  return function holdsBig(i) { return bigArray[i] + note.length; };
}
function noCapture(v) { return v * 2; }
function greet(greeting, times, name) { return (greeting + ' ' + name).repeat(times); }
function* gen(n) { for (let i = 0; i < n; i++) yield i; }
async function waiter(ms) { await new Promise((r) => setTimeout(r, ms)); return ms; }
globalThis.keep = {
  counters: [makeCounter(1), makeCounter(2)],
  nested: [outer(1)(2), outer(10)(20), outer(100)],
  holdsBig: makeBigHolder(),
  noCapture,
  bound: greet.bind({ who: 'thisArg' }, 'hello', 2),
  boundTwice: greet.bind(null, 'hi').bind(null, 3),
  iterator: gen(5),
  arrowInClass: new (class Widget { constructor() { this.onClick = () => this.clicked = true; } })(),
};
keep.iterator.next();
globalThis.pending = waiter(50);
setTimeout(() => snap('closures.heapsnapshot'), 20);
`,
  },

  collections: {
    description: 'Maps and Sets (object keys, string keys, number keys), two different classes both named Item ' +
      '(one in [eval], one in the script collections-lib.js: two Summary rows by location), a subclass, ' +
      'plain object literals of several shapes (interface names such as {host, port}, keys needing ' +
      'JSON quoting, one shape longer than 120 characters, {x, y} holding only smis: no property edges), nested arrays, a holey and a dictionary-mode array',
    outputs: ['collections'],
    src: `
const vm = require('vm');
class Item { constructor(i) { this.i = i; this.label = 'eval-item-' + i; } }
const LibItem = vm.runInThisContext(
  '// a library script with its own class named Item\\n' +
  '(() => {\\n' +
  'class Item {\\n' +
  '  constructor(n) { this.n = n; this.tags = ["lib", "item-" + n]; }\\n' +
  '}\\n' +
  'class SpecialItem extends Item { constructor(n) { super(n); this.special = true; } }\\n' +
  'return { Item, SpecialItem };\\n' +
  '})()', { filename: 'collections-lib.js' });
const items = [], libItems = [], special = [];
for (let i = 0; i < 60; i++) items.push(new Item(i));
for (let i = 0; i < 40; i++) libItems.push(new LibItem.Item(i));
for (let i = 0; i < 10; i++) special.push(new LibItem.SpecialItem(i));

const byName = new Map(), byObject = new Map(), byNumber = new Map();
for (let i = 0; i < 50; i++) byName.set('key-' + i, items[i]);
for (let i = 0; i < 30; i++) byObject.set(libItems[i], { seen: i, label: 'obj-' + i });
for (let i = 0; i < 20; i++) byNumber.set(i * 7, [i, i * 2]);
const tags = new Set(), owners = new Set();
for (let i = 0; i < 40; i++) tags.add('tag-' + (i % 25));
for (let i = 0; i < 15; i++) owners.add(items[i]);

const shapes = [];
for (let i = 0; i < 40; i++) shapes.push({ host: 'h' + i, port: 'p' + (8000 + i) });
for (let i = 0; i < 25; i++) shapes.push({ host: 'h' + i, port: 'p' + (9000 + i), tls: i % 2 === 0 });
for (let i = 0; i < 30; i++) shapes.push({ x: i, y: i * 2 });             // smis only: no property edges
for (let i = 0; i < 12; i++) shapes.push({ user: { name: 'u' + i, roles: ['r' + (i % 3)] } });
for (let i = 0; i < 5; i++) shapes.push({ 'a,b': 's' + i, 'q"uote': 's', '{brace}': 's', "it's": 's' });
const longKeys = {};
for (let k = 0; k < 12; k++) longKeys['a_rather_long_property_name_number_' + k] = 'v' + k;
for (let i = 0; i < 4; i++) shapes.push(Object.assign({}, longKeys));
shapes.push({ lonely: 'one' });
const dict = {}; for (let i = 0; i < 200; i++) dict['p' + i] = i; for (let i = 0; i < 100; i++) delete dict['p' + (i * 2)];

const nested = [[1, 2, [3, 4, [5, [6]]]], [[items[0]], [libItems[0], [special[0]]]], ['a', ['b', ['c']]]];
const holey = [1, , 3]; holey[50] = 'far';
const sparse = []; sparse[100000] = 'sparse';
globalThis.keep = { items, libItems, special, byName, byObject, byNumber, tags, owners, shapes, dict, nested, holey, sparse };
snap('collections.heapsnapshot');
`,
  },

  typed: {
    description: 'typed arrays of every element kind, views sharing one ArrayBuffer, Buffers (pooled ' +
      'allocUnsafe slices, Buffer.from, Buffer.alloc), ArrayBuffers of 1 MiB, 3 GiB (self size >= 2^31) and ' +
      '4 GiB + 4 KiB (self size >= 2^32: DevTools keeps it modulo 2^32), a DataView, a SharedArrayBuffer ' +
      'with an Int32Array, a resizable ArrayBuffer, a detached ArrayBuffer',
    outputs: ['typed'],
    src: `
const shared = new ArrayBuffer(4096);
const views = {
  u8: new Uint8Array(64), i8: new Int8Array(16), u8c: new Uint8ClampedArray(16), i16: new Int16Array(16),
  u16: new Uint16Array(16), i32: new Int32Array(16), u32: new Uint32Array(16), f32: new Float32Array(16),
  f64: new Float64Array(256).fill(0.5), b64: new BigInt64Array(4), bu64: new BigUint64Array(4),
  onShared1: new Uint8Array(shared, 0, 1024), onShared2: new Float64Array(shared, 1024, 64),
  dv: new DataView(shared, 2048, 512),
};
const buffers = [];
for (let i = 0; i < 20; i++) buffers.push(Buffer.allocUnsafe(100 + i));      // slices of the pool
buffers.push(Buffer.from('hello buffer world'), Buffer.alloc(65536, 1), Buffer.from([1, 2, 3]));
const mib = new ArrayBuffer(1 << 20);
const big3g = new ArrayBuffer(3 * 1024 * 1024 * 1024);                    // never touched: not resident
const big4g = new ArrayBuffer(4 * 1024 * 1024 * 1024 + 4096);
const sab = new SharedArrayBuffer(8192); const sabView = new Int32Array(sab); Atomics.add(sabView, 0, 1);
let resizable = null; try { resizable = new ArrayBuffer(16, { maxByteLength: 1024 }); resizable.resize(64); } catch {}
const detached = new ArrayBuffer(256); structuredClone(detached, { transfer: [detached] });
globalThis.keep = { shared, views, buffers, mib, big3g, big4g, sab, sabView, resizable, detached };
snap('typed.heapsnapshot');
`,
  },

  weakmaps: {
    description: 'WeakMaps whose values are reachable only through a strongly held key (ephemeron ' +
      'edges, WeakValue), a WeakMap entry whose value is also held strongly, a WeakSet, WeakRefs to a ' +
      'live and to a collected object, a FinalizationRegistry with registered targets, held values and ' +
      'unregister tokens',
    outputs: ['weakmaps'],
    src: `
class WeakKey { constructor(i) { this.k = i; } }
class WeakValue { constructor(i) { this.v = i; this.payload = new Array(20).fill(i); } }
class Target { constructor(i) { this.t = i; } }
const keys = []; for (let i = 0; i < 30; i++) keys.push(new WeakKey(i));
const wm = new WeakMap(); for (let i = 0; i < 30; i++) wm.set(keys[i], new WeakValue(i));
const strongValue = new WeakValue(1000); const wm2 = new WeakMap([[keys[0], strongValue]]);
(function () { const gone = new WeakKey(-1); wm.set(gone, new WeakValue(-1)); })(); // key dies: entry goes
const ws = new WeakSet(); for (let i = 0; i < 10; i++) ws.add(keys[i]);
const liveTarget = new Target(1);
const refs = [new WeakRef(liveTarget), new WeakRef(new Target(2))];
const heldLog = [];
const registry = new FinalizationRegistry((held) => heldLog.push(held));
const registered = [];
for (let i = 0; i < 8; i++) {
  const t = new Target(100 + i); registered.push(t);
  registry.register(t, 'held-' + i, i % 2 ? { token: i } : undefined);
}
registry.register(new Target(999), 'held-collected');
globalThis.keep = { keys, wm, wm2, strongValue, ws, liveTarget, refs, registry, registered, heldLog };
setTimeout(() => { gc(); setTimeout(() => snap('weakmaps.heapsnapshot'), 10); }, 10);
`,
  },

  internals: {
    description: 'v8.writeHeapSnapshot(file, {exposeInternals: true}): no root -> global shortcut, so no user ' +
      'roots (DevTools skips the shallow-size redistribution; distances start at the root)',
    outputs: ['internals'],
    src: `
class Record { constructor(i) { this.i = i; this.name = 'record-' + i; this.meta = { i, even: i % 2 === 0 }; } }
const records = []; for (let i = 0; i < 200; i++) records.push(new Record(i));
const index = new Map(records.map((r) => [r.name, r]));
function handler(n) { return records[n % records.length]; }
globalThis.keep = { records, index, handler };
snap('internals.heapsnapshot', { exposeInternals: true });
`,
  },

  numeric: {
    description: 'v8.writeHeapSnapshot(file, {exposeNumericValues: true}) of objects holding smis ' +
      '(small, negative, 2^30-1) and doubles (heap numbers, NaN, -0, Infinity, 1e21, mutable double fields), ' +
      'a packed double array and a mixed array',
    outputs: ['numeric'],
    src: `
class Point { constructor(x, y) { this.x = x; this.y = y; } }
const ints = [], doubles = [];
for (let i = 0; i < 100; i++) ints.push(new Point(i, -i));
for (let i = 0; i < 100; i++) doubles.push(new Point(i + 0.5, i * 1.25));
const specials = { nan: NaN, negZero: -0, inf: Infinity, ninf: -Infinity, big: 1e21, maxSmi: 2 ** 30 - 1,
  minSmi: -(2 ** 30), aboveSmi: 2 ** 31, tiny: 5e-324, pi: Math.PI };
const packedDoubles = [0.1, 0.2, 0.3, 0.4];
const mixed = [1, 2.5, 'three', { four: 4 }, 5n, 2n ** 70n];
const counter = { hits: 0, ratio: 0.0 }; for (let i = 0; i < 1000; i++) { counter.hits++; counter.ratio += 0.001; }
globalThis.keep = { ints, doubles, specials, packedDoubles, mixed, counter };
snap('numeric.heapsnapshot', { exposeNumericValues: true });
`,
  },

  unreachable: {
    description: 'a real snapshot rewritten so a ring of 6 RingNode objects (each with a payload ' +
      'object and a pointer to a reachable shared object) and what only they hold are unreachable: every ' +
      'edge into the ring from outside it is removed (edge counts fixed); DevTools warns about the ' +
      'unreachable nodes',
    outputs: ['unreachable'],
    raw: ['unreachable-raw'],
    src: `
class RingNode { constructor(i, shared) { this.i = i; this.payload = { ring: i, text: 'payload-' + i }; this.shared = shared; this.next = null; } }
class SharedThing { constructor() { this.name = 'shared'; } }
const shared = new SharedThing();
const ring = []; for (let i = 0; i < 6; i++) ring.push(new RingNode(i, shared));
for (let i = 0; i < 6; i++) ring[i].next = ring[(i + 1) % 6];
globalThis.keep = { shared, ringHolder: { head: ring[0] } };
ring.length = 0;
snap('unreachable-raw.heapsnapshot');
`,
    post: (dir) => makeUnreachable(path.join(dir, 'unreachable-raw.heapsnapshot'), path.join(dir, 'unreachable.heapsnapshot'), 'RingNode'),
  },

  'pair-a': {
    description: 'two snapshots of one process (Comparison view): between them 500 Leaky instances are ' +
      'pushed to a growing array, 200 Doomed objects and a Map of 100 entries are freed, 50 plain ' +
      '{host, port} objects gain a property (so they move to {host, port, tls}: Deleted + New), strings churn',
    outputs: ['pair-a-base', 'pair-a-current'],
    src: `
class Leaky { constructor(i) { this.i = i; this.payload = 'leaky-' + i; this.pair = [i, i + 1]; } }
class Doomed { constructor(i) { this.d = i; } }
globalThis.grow = [];
globalThis.doomed = []; for (let i = 0; i < 200; i++) doomed.push(new Doomed(i));
globalThis.configs = []; for (let i = 0; i < 50; i++) configs.push({ host: 'h' + i, port: 'p' + (1000 + i) });
globalThis.table = new Map(); for (let i = 0; i < 100; i++) table.set('t' + i, { row: i });
for (let i = 0; i < 20; i++) grow.push(new Leaky(-i));
snap('pair-a-base.heapsnapshot');
for (let i = 0; i < 500; i++) grow.push(new Leaky(i));
doomed = null; table = null;
for (const c of configs) c.tls = true;
let churn = ''; for (let i = 0; i < 1000; i++) churn = 'x' + i + churn.slice(0, 10);
globalThis.lastChurn = churn;
snap('pair-a-current.heapsnapshot');
`,
  },

  'pair-b': {
    description: 'an http server on 127.0.0.1 (port 0) snapshotted twice: 10 warm-up requests, base, ' +
      'then 150 requests to itself (one at a time), each leaking a RequestRecord (with the request headers) ' +
      'into a module-level array and a listener on a long-lived emitter',
    outputs: ['pair-b-base', 'pair-b-current'],
    src: `
const http = require('http');
const { EventEmitter } = require('events');
class RequestRecord { constructor(n, req) { this.n = n; this.url = req.url; this.headers = req.headers; this.at = n * 1000; } }
const records = [];
const bus = new EventEmitter(); bus.setMaxListeners(0);
let served = 0;
const server = http.createServer((req, res) => {
  const rec = new RequestRecord(served++, req);
  records.push(rec);
  bus.on('tick', () => rec.n);
  res.setHeader('content-type', 'text/plain');
  res.end('ok ' + rec.n + '\\n');
});
globalThis.app = { server, records, bus };
function get(port, p) {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: p, agent: false }, (r) => {
      let b = ''; r.setEncoding('utf8'); r.on('data', (d) => (b += d)); r.on('end', () => resolve(b));
    }).on('error', reject);
  });
}
setTimeout(() => { console.error('pair-b: timeout'); process.exit(3); }, 60000).unref();
server.listen(0, '127.0.0.1', async () => {
  const port = server.address().port;
  for (let i = 0; i < 10; i++) await get(port, '/warmup/' + i);
  await new Promise((r) => setTimeout(r, 20));
  snap('pair-b-base.heapsnapshot');
  for (let i = 0; i < 150; i++) await get(port, '/item/' + i + '?q=' + (i % 7));
  await new Promise((r) => setTimeout(r, 20));
  snap('pair-b-current.heapsnapshot');
  server.close();
});
`,
  },

  series: {
    description: 'three snapshots of one process (baseline, target, final): each step leaks 300 Session ' +
      'objects (each with a 4-element array and a closure), fills a bounded cache of 200 CacheEntry objects ' +
      '(full after the first step, then entries are replaced but the count stays flat) and churns 3000 ' +
      'temporary objects',
    outputs: ['series-1', 'series-2', 'series-3'],
    src: `
class Session { constructor(i) { this.id = i; this.user = 'user-' + i; this.data = [i, i + 1, i + 2, i + 3]; this.touch = () => this.id; } }
class CacheEntry { constructor(k) { this.key = 'k' + k; this.value = 'cached-' + k; } }
const sessions = [];
const cache = new Map(); const CAP = 200;
let nextSession = 0, nextKey = 0;
function cacheSet(v) { if (cache.size >= CAP) cache.delete(cache.keys().next().value); cache.set(v.key, v); }
function step() {
  for (let i = 0; i < 300; i++) sessions.push(new Session(nextSession++));
  for (let i = 0; i < CAP; i++) cacheSet(new CacheEntry(nextKey++));
  let tmp = []; for (let i = 0; i < 3000; i++) tmp.push({ junk: i, s: 'j' + (i % 10) }); tmp = null;
}
globalThis.app = { sessions, cache };
snap('series-1.heapsnapshot');
step();
snap('series-2.heapsnapshot');
step();
snap('series-3.heapsnapshot');
`,
  },
};

// ---------------------------------------------------------------------------------------------
// Snapshot rewriting for `unreachable`: V8's text layout (one node/edge row per line) is kept.

function parseSnapshot(file) { return JSON.parse(fs.readFileSync(file, 'utf8')); }

function writeSnapshotLikeV8(file, s) {
  const meta = s.snapshot.meta;
  const nf = meta.node_fields.length, ef = meta.edge_fields.length, lf = meta.location_fields.length;
  const rows = (arr, w) => {
    const out = [];
    for (let i = 0; i < arr.length; i += w) out.push((i ? ',' : '') + arr.slice(i, i + w).join(','));
    return out.join('\n');
  };
  const parts = [
    '{"snapshot":' + JSON.stringify(s.snapshot) + ',',
    '"nodes":[' + rows(s.nodes, nf) + '],',
    '"edges":[' + rows(s.edges, ef) + '],',
    '"trace_function_infos":' + JSON.stringify(s.trace_function_infos) + ',',
    '"trace_tree":' + JSON.stringify(s.trace_tree) + ',',
    '"samples":' + JSON.stringify(s.samples) + ',',
    '"locations":[' + rows(s.locations, lf) + '],',
    '"strings":[' + s.strings.map((x) => JSON.stringify(x)).join(',\n') + ']}',
  ];
  fs.writeFileSync(file, parts.join('\n'));
}

// Removes every edge whose target is an object (node type object) named `cls` and whose source is not one. Returns the
// number of removed edges.
function makeUnreachable(src, dst, cls) {
  const s = parseSnapshot(src);
  const meta = s.snapshot.meta;
  const nf = meta.node_fields.length, ef = meta.edge_fields.length;
  const nType = meta.node_fields.indexOf('type'), nName = meta.node_fields.indexOf('name');
  const nEc = meta.node_fields.indexOf('edge_count'), objectType = meta.node_types[nType].indexOf('object');
  const eTo = meta.edge_fields.indexOf('to_node');
  const ring = new Set();
  for (let i = 0; i < s.nodes.length; i += nf) {
    if (s.nodes[i + nType] === objectType && s.strings[s.nodes[i + nName]] === cls) ring.add(i);
  }
  if (ring.size === 0) throw new Error(`unreachable: no ${cls} node in ${src}`);
  const edges = [];
  let e = 0, removed = 0;
  for (let i = 0; i < s.nodes.length; i += nf) {
    const n = s.nodes[i + nEc];
    let kept = 0;
    for (let k = 0; k < n; k++, e += ef) {
      const to = s.edges[e + eTo];
      if (ring.has(to) && !ring.has(i)) { removed++; continue; }
      for (let f = 0; f < ef; f++) edges.push(s.edges[e + f]);
      kept++;
    }
    s.nodes[i + nEc] = kept;
  }
  if (e !== s.edges.length) throw new Error('unreachable: edge walk did not cover the edges array');
  s.edges = edges;
  s.snapshot.edge_count = edges.length / ef;
  writeSnapshotLikeV8(dst, s);
  fs.unlinkSync(src);
  return { ringNodes: ring.size, removedEdges: removed };
}

function headerCounts(file) {
  const fd = fs.openSync(file, 'r'); const buf = Buffer.alloc(4096);
  fs.readSync(fd, buf, 0, 4096, 0); fs.closeSync(fd);
  const head = buf.toString('latin1');
  return { nodes: Number(/"node_count":(\d+)/.exec(head)[1]), edges: Number(/"edge_count":(\d+)/.exec(head)[1]) };
}

function run(outDir, names) {
  fs.mkdirSync(outDir, { recursive: true });
  for (const name of names) {
    const sc = SCENARIOS[name];
    if (!sc) throw new Error(`unknown scenario ${name} (known: ${Object.keys(SCENARIOS).join(' ')})`);
    const files = sc.raw || sc.outputs;
    const fds = files.map((f) => fs.openSync(path.join(outDir, f + '.heapsnapshot'), 'w'));
    try {
      execFileSync(process.execPath, ['--expose-gc', '-e', prelude(files) + sc.src],
        { cwd: '/', env: {}, stdio: ['ignore', 'inherit', 'inherit', ...fds], timeout: 120000 });
    } catch (err) {
      console.error(`make.js: scenario ${name} failed (${err.signal || 'exit ' + err.status})`);
      process.exit(1);
    } finally {
      fds.forEach((fd) => fs.closeSync(fd));
    }
    const extra = sc.post ? sc.post(outDir) : null;
    for (const o of sc.outputs) {
      const f = path.join(outDir, o + '.heapsnapshot');
      const c = headerCounts(f);
      console.log(`${o}.heapsnapshot\t${fs.statSync(f).size}\t${c.nodes} nodes\t${c.edges} edges` +
        (extra ? '\t' + JSON.stringify(extra) : ''));
    }
  }
}

module.exports = { SCENARIOS, parseSnapshot, headerCounts };

if (require.main === module) {
  const [outDir, ...names] = process.argv.slice(2);
  if (!outDir || outDir.startsWith('-')) {
    console.error('usage: node make.js OUT_DIR [NAME ...]\n  NAME: ' + Object.keys(SCENARIOS).join(' '));
    process.exit(2);
  }
  run(path.resolve(outDir), names.length ? names : Object.keys(SCENARIOS));
}
