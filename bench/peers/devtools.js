'use strict';
// node devtools.js PEERS_DIR FILE: the Chrome DevTools heap snapshot engine as npm
// heap-snapshot-toolkit packages it: stream the file into HeapSnapshotLoader, build the
// JSHeapSnapshot (its initialize(): retainers, flags, shallow-size redistribution, distances,
// dominators, retained sizes, statistics), then the Summary view's class aggregation
// (aggregatesWithFilter, with per-class retained sizes). Prints one line of totals.
const path = require('path');
const fs = require('fs');
const { pathToFileURL } = require('url');
const [peers, file] = process.argv.slice(2);
if (!peers || !file) { console.error('usage: node devtools.js PEERS_DIR FILE'); process.exit(2); }
// Node 20 lacks Promise.withResolvers, which newer DevTools code uses.
if (!Promise.withResolvers) {
  Promise.withResolvers = function () { let resolve, reject; const promise = new this((a, b) => { resolve = a; reject = b; }); return { promise, resolve, reject }; };
}

(async () => {
  const entry = require.resolve('heap-snapshot-toolkit', { paths: [path.resolve(peers)] });
  const { parse, DevToolsAPI } = await import(pathToFileURL(entry).href);
  const snapshot = await parse(fs.createReadStream(file, { encoding: 'utf-8', highWaterMark: 4 << 20 }));
  const aggregates = snapshot.aggregatesWithFilter(new DevToolsAPI.HeapSnapshotModel.NodeFilter());
  let sum = 0, count = 0;
  for (const a of Object.values(aggregates)) { sum += a.maxRet; count += a.count; }
  console.log(`devtools nodes=${snapshot.nodeCount} classes=${Object.keys(aggregates).length} counted=${count} ` +
    `class_retained_sum=${sum} total=${snapshot.totalSize}`);
})().catch((e) => { console.error(e && e.stack || e); process.exit(1); });
