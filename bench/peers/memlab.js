'use strict';
// node memlab.js PEERS_DIR FILE: memlab's full load of one heap snapshot, as its heap analyses do it
// (@memlab/heap-analysis getFullHeapFromFile: parse, shortest paths, dominators, retained sizes),
// then a class aggregation (count, self size, retained size per node name) over all nodes.
// Prints one line: nodes, classes, sum of retained sizes of the classes' largest instances, root
// retained size, so none of the work can be skipped.
const path = require('path');
const [peers, file] = process.argv.slice(2);
if (!peers || !file) { console.error('usage: node memlab.js PEERS_DIR FILE'); process.exit(2); }
const { getFullHeapFromFile } = require(require.resolve('@memlab/heap-analysis', { paths: [path.resolve(peers)] }));

(async () => {
  const heap = await getFullHeapFromFile(file);
  const classes = new Map();
  let nodes = 0, rootRetained = 0;
  heap.nodes.forEach((node) => {
    nodes++;
    if (node.id === 1) rootRetained = node.retainedSize;     // the synthetic root
    const key = node.type + ':' + node.name;
    let c = classes.get(key);
    if (!c) classes.set(key, (c = { count: 0, self: 0, maxRetained: 0 }));
    c.count++; c.self += node.self_size; if (node.retainedSize > c.maxRetained) c.maxRetained = node.retainedSize;
  });
  let sum = 0; for (const c of classes.values()) sum += c.maxRetained;
  console.log(`memlab nodes=${nodes} classes=${classes.size} max_retained_sum=${sum} root_retained=${rootRetained}`);
})().catch((e) => { console.error(e && e.stack || e); process.exit(1); });
