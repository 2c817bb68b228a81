// stacks-driver.ts: the allocation stacks the real DevTools engine reads from a snapshot taken
// with allocation tracking on, for the parity test of leakhound's trace reading
// (crates/leakhound-heap/tests/parity.rs). Bundled and run by stacks.sh against the DevTools
// oracle's npm install (../shared/oracle/devtools: chrome-devtools-frontend, esbuild).
//
//   node stacks-driver.mjs SNAPSHOT > STACKS.json
//
// Prints {"schema": "leakhound-devtools-stacks/1", "nodes": [[ordinal, [[functionName,
// scriptName, scriptId, line, column], ...]], ...]}: every node with a trace_node_id, its
// `JSHeapSnapshot.allocationStack(nodeIndex)` (AllocationProfile.serializeAllocationStack:
// the allocating function first, up to and including the tree's root).
import * as fs from 'node:fs';

import * as HeapSnapshotWorker from 'chrome-devtools-frontend/front_end/entrypoints/heap_snapshot_worker/HeapSnapshot.ts';
import {HeapSnapshotLoader} from 'chrome-devtools-frontend/front_end/entrypoints/heap_snapshot_worker/HeapSnapshotLoader.ts';

function installPolyfills(): void {
  const P = Promise as unknown as {withResolvers?: unknown};
  if (typeof P.withResolvers !== 'function') {
    P.withResolvers = function withResolvers<T>() {
      let resolve!: (value: T|PromiseLike<T>) => void;
      let reject!: (reason?: unknown) => void;
      const promise = new Promise<T>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      return {promise, resolve, reject};
    };
  }
}

async function main(): Promise<void> {
  installPolyfills();
  const file = process.argv[2];
  const dispatcher = {sendEvent(): void {}};
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const loader = new HeapSnapshotLoader(dispatcher as any);
  loader.write(fs.readFileSync(file, 'utf8'));
  loader.close();
  const channel = new MessageChannel();
  new HeapSnapshotWorker.SecondaryInitManager(channel.port2 as never);
  const snapshot = await loader.buildSnapshot(channel.port1 as never) as HeapSnapshotWorker.JSHeapSnapshot;
  channel.port1.close();
  channel.port2.close();
  const fieldCount = snapshot.nodeFieldCount;
  const node = snapshot.rootNode();
  const out: unknown[] = [];
  for (let nodeIndex = 0; nodeIndex < snapshot.nodes.length; nodeIndex += fieldCount) {
    node.nodeIndex = nodeIndex;
    if (!node.traceNodeId()) {
      continue;
    }
    const stack = snapshot.allocationStack(nodeIndex) || [];
    out.push([nodeIndex / fieldCount, stack.map(f => [f.functionName, f.scriptName, f.scriptId, f.line, f.column])]);
  }
  process.stdout.write(JSON.stringify({schema: 'leakhound-devtools-stacks/1', nodes: out}) + '\n');
}

main().catch(e => {
  console.error(e);
  process.exit(1);
});
