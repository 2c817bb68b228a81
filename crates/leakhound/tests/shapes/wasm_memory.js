'use strict';
// A leak outside every JS collection (the no-cluster explanation's end-to-end case): the
// app renders thumbnails in a WebAssembly module's linear memory and its allocator never
// frees: every request takes 16 KiB more of the one WebAssembly.Memory (grown a 64 KiB
// page at a time) and fills it. No JS object accumulates (the Memory and its buffer are
// one object each), so the heap snapshots have no cluster; the memory shows only outside
// the JS heap. FIXED=1: the twin reuses one scratch area.
const { listen } = require('../apps/common');

const FIXED = process.env.FIXED === '1';
const PAGE = 64 * 1024;
const THUMBNAIL = 16 * 1024;
const memory = new WebAssembly.Memory({ initial: 1, maximum: 32768 });
let used = 0;
let rendered = 0;

function renderThumbnail(seed) {
  let offset = 0;
  if (!FIXED) {
    if (used + THUMBNAIL > memory.buffer.byteLength) memory.grow(1);
    offset = used;
    used += THUMBNAIL;
  }
  new Uint8Array(memory.buffer, offset, THUMBNAIL).fill((seed % 251) + 1);
  rendered++;
}

listen((req, res) => {
  renderThumbnail(rendered);
  res.end(String(memory.buffer.byteLength));
}, 'wasm-memory');
