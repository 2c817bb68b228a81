'use strict';
// A minimal inspector client for `bench/run.py --capture --capture-diagnose`: it isolates what a
// snapshot taken through the inspector costs the target, next to leakhound doing the same.
//   node --experimental-websocket bench/capture-client.js WS_URL FILE MODE
// MODE
//   progress    HeapProfiler.takeHeapSnapshot {reportProgress: true, captureNumericValue: false}
//               (what leakhound asks for), addHeapSnapshotChunk strings appended to FILE
//   noprogress  the same without reportProgress
//   eval        Runtime.evaluate `require('v8').writeHeapSnapshot(FILE)` (includeCommandLineAPI):
//               the target writes the file itself, nothing but the reply crosses the socket
// No GC is requested. Prints one JSON line: {mode, ms (request to reply), bytes, chunks, progress_events}.
// Needs node >= 20.10 (WebSocket behind --experimental-websocket; built in from node 22).
const fs = require('fs');

const [url, file, mode] = process.argv.slice(2);
if (!url || !file || !['progress', 'noprogress', 'eval'].includes(mode)) {
  console.error('usage: capture-client.js WS_URL FILE progress|noprogress|eval');
  process.exit(2);
}
if (typeof WebSocket !== 'function') {
  console.error('capture-client.js: no WebSocket (node >= 20.10 with --experimental-websocket)');
  process.exit(2);
}
const ws = new WebSocket(url);
let nextId = 0;
const pending = new Map();
let fd = null;
let bytes = 0, chunks = 0, progressEvents = 0;
const call = (method, params = {}) => new Promise((resolve, reject) => {
  const id = ++nextId;
  pending.set(id, (m) => (m.error ? reject(new Error(`${method}: ${JSON.stringify(m.error)}`)) : resolve(m.result)));
  ws.send(JSON.stringify({ id, method, params }));
});
ws.onmessage = (ev) => {
  const m = JSON.parse(ev.data);
  if (m.id !== undefined) {
    const cb = pending.get(m.id);
    pending.delete(m.id);
    if (cb) cb(m);
  } else if (m.method === 'HeapProfiler.addHeapSnapshotChunk') {
    bytes += fs.writeSync(fd, m.params.chunk);
    chunks++;
  } else if (m.method === 'HeapProfiler.reportHeapSnapshotProgress') {
    progressEvents++;
  }
};
ws.onerror = (e) => { console.error(`capture-client.js: ${e.message || e.type || e}`); process.exit(1); };
ws.onopen = async () => {
  try {
    let ms;
    if (mode === 'eval') {
      const t = process.hrtime.bigint();
      const r = await call('Runtime.evaluate', {
        expression: `require('v8').writeHeapSnapshot(${JSON.stringify(file)})`,
        includeCommandLineAPI: true, returnByValue: true,
      });
      ms = Number(process.hrtime.bigint() - t) / 1e6;
      if (r.exceptionDetails) throw new Error(`evaluate: ${JSON.stringify(r.exceptionDetails).slice(0, 300)}`);
      bytes = fs.statSync(file).size;
    } else {
      await call('HeapProfiler.enable');
      fd = fs.openSync(file, 'w');
      const t = process.hrtime.bigint();
      await call('HeapProfiler.takeHeapSnapshot', { reportProgress: mode === 'progress', captureNumericValue: false });
      ms = Number(process.hrtime.bigint() - t) / 1e6;
      fs.closeSync(fd);
      await call('HeapProfiler.disable');
    }
    console.log(JSON.stringify({ mode, ms: Math.round(ms * 10) / 10, bytes, chunks, progress_events: progressEvents }));
    ws.close();
    process.exit(0);
  } catch (e) {
    console.error(`capture-client.js: ${e.message}`);
    process.exit(1);
  }
};
