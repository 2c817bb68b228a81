'use strict';
// make-tracked.js: parity-corpus snapshots taken with V8's allocation tracking on, so they carry
// `trace_function_infos`, `trace_tree` and a `trace_node_id` per node (node 20 and node 26, whose
// layouts differ: node 26 writes trace_node_id only when tracking is on). Run through
// make-tracked.sh, which runs the oracle and updates the manifest; by hand:
//
//   node tests/corpus/make-tracked.js OUT_DIR node20=BINARY node26=BINARY
//
// Writes OUT_DIR/<producer>-tracked.heapsnapshot and <producer>-tracked.version. The scene is a
// small http server on 127.0.0.1 (port 0) that requests itself 100 times through a keep-alive agent;
// each request leaks a `Visit` made by `recordVisit`, so the stacks have a known allocating
// function. `--track-heap-objects` turns tracking on at startup (the same tracker as
// HeapProfiler.startTrackingHeapObjects {trackAllocations: true}). cwd /, empty environment,
// the snapshot written to an inherited file descriptor.
const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const SCENE = `
const http = require('http');
class Visit { constructor(url, headers) { this.url = url; this.agent = headers['user-agent'] || ''; this.n = visits.length; } }
const visits = [];
function recordVisit(req) { visits.push(new Visit(req.url, req.headers)); }
const server = http.createServer((req, res) => { recordVisit(req); res.end('ok'); });
server.listen(0, '127.0.0.1', async () => {
  const port = server.address().port;
  const agent = new http.Agent({ keepAlive: true });
  for (let i = 0; i < 100; i++) {
    await new Promise((ok, bad) => http.get({ host: '127.0.0.1', port, path: '/v/' + i, agent },
      (r) => { r.resume(); r.on('end', ok); }).on('error', bad));
  }
  agent.destroy();
  server.close(() => {
    globalThis.keep = visits;
    setImmediate(() => { gc(); gc(); require('v8').writeHeapSnapshot('/dev/fd/3'); });
  });
});
`;

function main() {
  const [out, ...specs] = process.argv.slice(2);
  if (!out || !specs.length) {
    console.error('usage: node make-tracked.js OUT_DIR PRODUCER=BINARY ...');
    process.exit(2);
  }
  fs.mkdirSync(out, { recursive: true });
  for (const spec of specs) {
    const [producer, bin] = spec.split('=');
    const name = producer + '-tracked';
    const file = path.join(out, name + '.heapsnapshot');
    const fd = fs.openSync(file, 'w');
    try {
      execFileSync(bin, ['--expose-gc', '--track-heap-objects', '-e', SCENE],
        { cwd: '/', env: {}, stdio: ['ignore', 'inherit', 'inherit', fd], timeout: 120000 });
    } finally {
      fs.closeSync(fd);
    }
    const version = 'node ' + execFileSync(bin, ['--version'], { env: {} }).toString().trim();
    fs.writeFileSync(path.join(out, name + '.version'), version + '\n');
    console.log(`${name}\t${fs.statSync(file).size}\t${version}`);
  }
}
main();
