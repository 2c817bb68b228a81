'use strict';
// node vscode.js PEERS_DIR FILE: @vscode/v8-heap-parser (Rust compiled to WebAssembly): reads the
// whole file, decode_bytes() parses it into a graph, then get_class_groups(…, no_retained=false)
// groups nodes by class and computes retained sizes (its dominator pass). Prints one line of totals.
const path = require('path');
const fs = require('fs');
const [peers, file] = process.argv.slice(2);
if (!peers || !file) { console.error('usage: node vscode.js PEERS_DIR FILE'); process.exit(2); }
const parser = require(require.resolve('@vscode/v8-heap-parser', { paths: [path.resolve(peers)] }));

const graph = parser.decode_bytes(fs.readFileSync(file));
const groups = graph.get_class_groups(0, 1 << 30, false);
let retained = 0n, self = 0n, children = 0;
for (const g of groups) { retained += g.retained_size; self += g.self_size; children += g.children_len; g.free(); }
console.log(`vscode classes=${groups.length} nodes_in_groups=${children} self_sum=${self} class_retained_sum=${retained}`);
