'use strict';
// node snapshots.js SERVER.js N OUT_DIR
//
// The three snapshots of the three-snapshot technique for one server, without leakhound
// (as ../shared/scenarios/drive.js does for the scenarios): starts `node --expose-gc
// SERVER.js` on 127.0.0.1 (its folder as working directory, PORT set) with an IPC channel,
// sends a 100-request warm-up, then takes s1, sends N requests, s2, N requests, s3 (each
// snapshot written by the server itself after two forced GCs, on an IPC message).
// Output: OUT_DIR/{s1,s2,s3}.heapsnapshot. Load: 10 keep-alive connections on 127.0.0.1,
// the whole run bounded by a 2-minute timeout. SNAPSHOT_SETTLE_MS (default 0): a pause
// after each load before its snapshot, for connections the app closes to finish closing.
const { spawn } = require('child_process');
const http = require('http');
const net = require('net');
const path = require('path');

const [server, nArg, out] = process.argv.slice(2);
if (!server || !out) {
  console.error('usage: node snapshots.js SERVER.js N OUT_DIR');
  process.exit(2);
}
const N = Number(nArg || 300);
setTimeout(() => { console.error('snapshots.js: hard timeout (2 min)'); process.exit(2); }, 120 * 1000).unref();

// Runs inside the server: writes a snapshot when asked over IPC.
const PRELOAD = `
process.on('message', (m) => {
  if (!m || !m.snapshot) return;
  global.gc(); global.gc();
  require('v8').writeHeapSnapshot(m.snapshot);
  process.send({ done: m.snapshot });
});`;

const freePort = () => new Promise((resolve, reject) => {
  const s = net.createServer();
  s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  s.on('error', reject);
});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

(async () => {
  const port = await freePort();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 10 });
  const get = (a) => new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/', agent: a }, (r) => {
      r.resume(); r.on('end', () => resolve(r.statusCode));
    }).on('error', reject);
  });
  const load = async (n) => {
    let next = 0;
    await Promise.all(Array.from({ length: 10 }, async () => {
      while (next++ < n) await get(agent);
    }));
  };
  const child = spawn(process.execPath, ['--expose-gc', '-e', PRELOAD + `\nrequire(${JSON.stringify(path.resolve(server))});`],
    { cwd: path.dirname(path.resolve(server)), env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const settle = Number(process.env.SNAPSHOT_SETTLE_MS || 0);
  const snap = (tag) => sleep(settle).then(() => new Promise((resolve) => {
    const file = path.join(path.resolve(out), tag + '.heapsnapshot');
    child.once('message', () => resolve(file));
    child.send({ snapshot: file });
  }));
  try {
    for (let i = 0; ; i++) {
      try { await get(false); break; } catch (e) { if (i > 100) throw e; await sleep(100); }
    }
    await load(100);
    await snap('s1');
    await load(N);
    await snap('s2');
    await load(N);
    await snap('s3');
  } finally { agent.destroy(); child.kill(); }
})().catch((e) => { console.error(e); process.exit(1); });
