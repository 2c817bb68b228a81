'use strict';
// make-producers.js: the parity corpus's snapshots from OTHER producers than the node running
// make.js (older and newer node, Deno, Bun, Chromium), so the parity test covers their layouts.
// Run through make-producers.sh, which installs the producers and runs the oracle; by hand:
//
//   node tests/corpus/make-producers.js OUT_DIR PRODUCER=BINARY ...
//
// PRODUCER is one of node12 node16 node22 node26 deno bun chromium (see PRODUCERS); BINARY the
// executable to run. Writes OUT_DIR/<producer>-collections.heapsnapshot and prints one line per
// file: name, bytes, nodes, edges, the producer's version, the snapshot's meta layout; the version
// also goes to OUT_DIR/<producer>-collections.version (tool.js producers puts it in the manifest).
//
// Every producer runs the same scene (SCENE: classes, a subclass, closures, Maps, Sets, plain
// objects of several shapes; plain ES2015 so node 12 and a browser run it) in its own process,
// cwd /, empty environment (Chromium: a fresh profile in a temp dir), forces GC and writes the
// snapshot to an inherited file descriptor (Chromium: over the DevTools protocol), so no temp
// path lands in the snapshot. What does land: Deno's snapshot holds the path of the deno binary
// (Deno.execPath()), so make-producers.sh installs it at a fixed path.
const { execFileSync, spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { headerCounts } = require('./make.js');

const SCENE = `
class Item { constructor(i) { this.i = i; this.label = 'item-' + i; } }
class SpecialItem extends Item { constructor(i) { super(i); this.special = true; } }
class Widget { constructor(n) { this.n = n; this.onClick = () => this.n; } }
function makeCounter(start) {
  let count = start; const label = 'counter-' + start;
  return { inc: () => ++count, get: () => count, label: () => label };
}
function makeBigHolder(n) { const big = new Array(n).fill(7); return function holdsBig(i) { return big[i]; }; }
const items = [], special = [], widgets = [], counters = [];
for (let i = 0; i < 60; i++) items.push(new Item(i));
for (let i = 0; i < 10; i++) special.push(new SpecialItem(i));
for (let i = 0; i < 20; i++) widgets.push(new Widget(i));
for (let i = 0; i < 10; i++) counters.push(makeCounter(i));
const byName = new Map(), byObject = new Map(), byNumber = new Map(), tags = new Set();
for (let i = 0; i < 50; i++) byName.set('key-' + i, items[i]);
for (let i = 0; i < 30; i++) byObject.set(items[i], { seen: i, label: 'obj-' + i });
for (let i = 0; i < 20; i++) byNumber.set(i * 7, [i, i * 2]);
for (let i = 0; i < 40; i++) tags.add('tag-' + (i % 25));
const shapes = [];
for (let i = 0; i < 40; i++) shapes.push({ host: 'h' + i, port: 'p' + (8000 + i) });
for (let i = 0; i < 25; i++) shapes.push({ host: 'h' + i, port: 'p' + (9000 + i), tls: i % 2 === 0 });
for (let i = 0; i < 30; i++) shapes.push({ x: i, y: i * 2 });
for (let i = 0; i < 12; i++) shapes.push({ user: { name: 'u' + i, roles: ['r' + (i % 3)] } });
for (let i = 0; i < 5; i++) shapes.push({ 'a,b': 's' + i, 'q"uote': 's', '{brace}': 's' });
const dict = {}; for (let i = 0; i < 200; i++) dict['p' + i] = i; for (let i = 0; i < 100; i++) delete dict['p' + (i * 2)];
const holey = [1, , 3]; holey[50] = 'far';
globalThis.keep = { items, special, widgets, counters, holdsBig: makeBigHolder(10000), byName, byObject,
  byNumber, tags, shapes, dict, holey, nested: [[1, [2, [3]]], [items[0], [special[0]]]] };
`;

// DOM part of the Chromium page: an attached list and a detached subtree held from JS.
const DOM = `
const list = document.createElement('ul');
for (let i = 0; i < 10; i++) { const li = document.createElement('li'); li.textContent = 'row ' + i; list.appendChild(li); }
document.body.appendChild(list);
const detached = document.createElement('div'); detached.className = 'detached-panel';
for (let i = 0; i < 5; i++) { const p = document.createElement('p'); p.textContent = 'gone ' + i; detached.appendChild(p); }
globalThis.keep.detached = detached;
`;

// Each producer: how to run SCENE and write the snapshot to fd 3, and how to ask its version.
const node = (note) => ({
  note,
  version: (bin) => 'node ' + execFileSync(bin, ['--version'], { env: {} }).toString().trim(),
  run: (bin, fd) => execFileSync(bin, ['--expose-gc', '-e',
    SCENE + `gc(); gc(); require('v8').writeHeapSnapshot('/dev/fd/3');`],
  { cwd: '/', env: {}, stdio: ['ignore', 'inherit', 'inherit', fd], timeout: 120000 }),
});
const PRODUCERS = {
  node12: node('node 12 (V8 7.8): 6 node fields, trace_node_id but no detachedness; node types end at "bigint" (no "object shape", no "wasm object")'),
  node16: node('node 16 (V8 9.4): 7 node fields (trace_node_id, detachedness); node types end at "bigint" (no "object shape")'),
  node22: node('node 22 (V8 12.4): 7 node fields; node types end at "object shape" (node 20 also has "wasm object")'),
  node26: node('node 26 (V8 14.6): 6 node fields (no trace_node_id: allocation tracking off), extra_native_bytes in the header, nodes and edges not one row per line'),
  deno: {
    note: 'Deno (V8 15.0): 6 node fields (no trace_node_id), 5 location fields (object_index, script_id, script_object_index, line, column), extra_native_bytes; the node:v8 polyfills make it the largest file',
    version: (bin) => execFileSync(bin, ['--version'], { env: {} }).toString().split('\n').slice(0, 2).join(', ')
      .replace(/ \(stable[^)]*\)/, ''),
    run: (bin, fd) => execFileSync(bin, ['eval', '--v8-flags=--expose-gc',
      `import v8 from 'node:v8';\n` + SCENE + `globalThis.gc(); globalThis.gc(); v8.writeHeapSnapshot('/dev/fd/3');`],
    { cwd: '/', env: { NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1', DENO_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'deno-dir-')) },
      stdio: ['ignore', 'inherit', 'inherit', fd], timeout: 120000 }),
  },
  bun: {
    note: 'Bun (JavaScriptCore): a V8-format file written by Bun itself: 7 node fields (trace_node_id, detachedness all 0), node ids 1..node_count in order (not V8\'s odd ids), no locations (Summary rows keyed by name only), no array or number nodes, no weak edges',
    version: (bin) => 'bun ' + execFileSync(bin, ['--version'], { env: {} }).toString().trim(),
    run: (bin, fd) => execFileSync(bin, ['-e',
      SCENE + `Bun.gc(true); Bun.gc(true); require('v8').writeHeapSnapshot('/dev/fd/3');`],
    { cwd: '/', env: {}, stdio: ['ignore', 'inherit', 'inherit', fd], timeout: 120000 }),
  },
  chromium: {
    note: 'Chromium (headless, about:blank page, snapshot over the DevTools protocol): 6 node fields (no trace_node_id), 5 location fields (script_object_index), extra_native_bytes; Blink/cppgc native nodes, an attached <ul> and a detached <div> subtree held from JS (detachedness 2: Detached <div>, Detached <p>, Detached Text rows)',
    version: (bin) => execFileSync(bin, ['--version'], { env: { HOME: os.tmpdir() }, stdio: ['ignore', 'pipe', 'ignore'] })
      .toString().trim().replace(/ built on .*/, '') + ' (Debian)',
    run: (bin, fd) => chromiumSnapshot(bin, fd),
  },
};

// Chromium: headless, DevTools protocol over --remote-debugging-pipe (fd 3 in, fd 4 out: JSON
// messages separated by NUL), so neither a port nor a WebSocket client is needed. Runs
// SCENE + DOM in about:blank with a sourceURL, collects garbage, takes the snapshot chunk by chunk.
function chromiumSnapshot(bin, outFd) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'leakhound-chromium-'));
  const child = spawn(bin, ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
    '--no-default-browser-check', '--disable-extensions', '--disable-component-update',
    '--disable-background-networking', '--disable-sync', '--remote-debugging-pipe',
    '--user-data-dir=' + profile, 'about:blank'],
  { cwd: '/', env: { HOME: profile }, stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const toChrome = child.stdio[3], fromChrome = child.stdio[4];
  let nextId = 1, buf = '';
  const waiting = new Map(), handlers = [];
  fromChrome.on('data', (d) => {
    buf += d.toString('utf8');
    let i;
    while ((i = buf.indexOf('\0')) >= 0) {
      const msg = JSON.parse(buf.slice(0, i)); buf = buf.slice(i + 1);
      if (msg.id && waiting.has(msg.id)) {
        const { resolve, reject } = waiting.get(msg.id); waiting.delete(msg.id);
        if (msg.error) reject(new Error(JSON.stringify(msg.error))); else resolve(msg.result);
      } else if (msg.method) handlers.forEach((h) => h(msg));
    }
  });
  const send = (method, params = {}, sessionId) => new Promise((resolve, reject) => {
    const id = nextId++; waiting.set(id, { resolve, reject });
    toChrome.write(JSON.stringify(sessionId ? { id, method, params, sessionId } : { id, method, params }) + '\0');
  });
  const chunks = [];
  handlers.push((m) => { if (m.method === 'HeapProfiler.addHeapSnapshotChunk') chunks.push(m.params.chunk); });
  const timer = setTimeout(() => { console.error('chromium: timeout\n' + stderr); child.kill('SIGKILL'); process.exit(3); }, 120000);
  return (async () => {
    let page;
    for (let t = 0; t < 100 && !page; t++) {
      page = (await send('Target.getTargets')).targetInfos.find((x) => x.type === 'page');
      if (!page) await new Promise((r) => setTimeout(r, 100));
    }
    const { sessionId } = await send('Target.attachToTarget', { targetId: page.targetId, flatten: true });
    const s = (method, params) => send(method, params, sessionId);
    await s('Runtime.enable');
    const r = await s('Runtime.evaluate', { expression: SCENE + DOM + '\n//# sourceURL=scene.js', returnByValue: true });
    if (r.exceptionDetails) throw new Error('chromium: scene threw ' + JSON.stringify(r.exceptionDetails));
    await s('HeapProfiler.enable');
    await s('HeapProfiler.collectGarbage');
    await s('HeapProfiler.collectGarbage');
    await s('HeapProfiler.takeHeapSnapshot', { reportProgress: false, captureNumericValue: false });
    fs.writeSync(outFd, chunks.join(''));
    await send('Browser.close').catch(() => {});
    await new Promise((r) => child.once('exit', r));
    clearTimeout(timer);
    fs.rmSync(profile, { recursive: true, force: true });
  })();
}

function layout(file) {
  const fd = fs.openSync(file, 'r'); const b = Buffer.alloc(4096);
  fs.readSync(fd, b, 0, 4096, 0); fs.closeSync(fd);
  const head = b.toString('utf8'); const i = head.indexOf('"nodes"');
  const h = JSON.parse(head.slice(0, i).replace(/,\s*$/, '') + '}').snapshot;
  return { node_fields: h.meta.node_fields, location_fields: h.meta.location_fields,
    node_types: h.meta.node_types[0], extra_native_bytes: h.extra_native_bytes };
}

async function main() {
  const [outDir, ...specs] = process.argv.slice(2);
  if (!outDir || !specs.length) {
    console.error('usage: node make-producers.js OUT_DIR PRODUCER=BINARY ...\n  PRODUCER: ' + Object.keys(PRODUCERS).join(' '));
    process.exit(2);
  }
  fs.mkdirSync(outDir, { recursive: true });
  for (const spec of specs) {
    const [name, bin] = spec.split('=');
    const p = PRODUCERS[name];
    if (!p || !bin) throw new Error('bad producer spec ' + spec);
    const file = path.join(path.resolve(outDir), name + '-collections.heapsnapshot');
    const fd = fs.openSync(file, 'w');
    try { await p.run(bin, fd); } finally { fs.closeSync(fd); }
    const c = headerCounts(file), version = p.version(bin);
    fs.writeFileSync(file.replace(/\.heapsnapshot$/, '.version'), version + '\n');
    console.log([path.basename(file), fs.statSync(file).size, c.nodes + ' nodes', c.edges + ' edges',
      version, JSON.stringify(layout(file))].join('\t'));
  }
}

module.exports = { PRODUCERS, SCENE };
if (require.main === module) main().catch((e) => { console.error(e); process.exit(1); });
