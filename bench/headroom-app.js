'use strict';
// A long-lived app holding a heap of one shape, for `bench/headroom.py` (what writing a heap
// snapshot costs the app in resident memory: the headroom model).
//   node --expose-gc bench/headroom-app.js KIND MB
// Fills the V8 heap until `heapUsed` reaches MB megabytes (10^6 bytes) with objects of KIND:
//   small      {id, v} objects with two small-integer fields, in arrays (~48 B each with the slot)
//   small-str  {id, name} objects, each with its own short string ('user-12345…')
//   large-str  512 KiB one-byte strings, each different (V8's large-object space; node makes
//              strings of a Buffer past ~1 MB external, off the heap, so they stay below that)
//   large-arr  arrays of 1 Mi doubles (8 MiB of elements each, large-object space)
//   buffer     1 MiB Buffers: off the V8 heap (`external`); MB counts their bytes, not heapUsed
//   world      the "customers" of bench/capture-app.js (a realistic mix: classes, maps, strings)
//   array1     {id} objects in ONE array (the usual shape of a leak: one collection that grows)
//   map        {id} objects in ONE Map keyed by number
//   dict       {id} objects in ONE plain object keyed by string (dictionary mode)
//   sameref    ONE array holding the same object over and over
// then runs gc() twice and prints one JSON line {ready, pid, kind, memory, spaces, heap} on
// stdout (memory: process.memoryUsage(); spaces: v8.getHeapSpaceStatistics() used bytes by
// space; heap: v8.getHeapStatistics()), and waits until killed. It opens no port; the
// inspector opens when a debugger sends SIGUSR1 (`leakhound snapshot --pid`).
const v8 = require('v8');

const KIND = process.argv[2] || 'small';
const MB = Number(process.argv[3] || 50);
const target = MB * 1e6;
const keep = [];
const heapUsed = () => (KIND === 'buffer' ? keep.length * (1 << 20) : process.memoryUsage().heapUsed);
// heapUsed counts garbage not yet collected: `true` only when the live heap has reached it.
const used = () => heapUsed() >= target && (global.gc(), heapUsed() >= target);

let seed = 42;
const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);

function fill() {
  let i = 0;
  if (KIND === 'small' || KIND === 'small-str') {
    let chunk = [];
    while (true) {
      for (let j = 0; j < 100000; j++, i++) {
        chunk.push(KIND === 'small' ? { id: i, v: i * 2 } : { id: i, name: 'user-' + i + '-' + (i * 7919).toString(36) });
      }
      keep.push(chunk);
      chunk = [];
      if (used()) return;
    }
  }
  if (KIND === 'array1' || KIND === 'map' || KIND === 'dict' || KIND === 'sameref') {
    const one = KIND === 'map' ? new Map() : KIND === 'dict' ? {} : [];
    const shared = { id: -1 };
    keep.push(one);
    while (true) {
      for (let j = 0; j < 100000; j++, i++) {
        if (KIND === 'map') one.set(i, { id: i });
        else if (KIND === 'dict') one['k' + i] = { id: i };
        else one.push(KIND === 'sameref' ? shared : { id: i });
      }
      if (used()) return;
    }
  }
  if (KIND === 'large-str') {
    while (!used()) {
      const b = Buffer.alloc(1 << 19, 97 + (i % 26));
      b.writeUInt32LE(i++, 0);
      keep.push(b.toString('latin1'));
      if (i * (1 << 19) > 4 * target) throw new Error('the strings are not on the V8 heap');
    }
    return;
  }
  if (KIND === 'large-arr') {
    while (!used()) {
      const a = [];
      for (let j = 0; j < 1 << 20; j++) a.push(i + j + 0.5);
      keep.push(a);
      i++;
    }
    return;
  }
  if (KIND === 'buffer') {
    while (!used()) keep.push(Buffer.alloc(1 << 20, i++ % 256));
    return;
  }
  if (KIND === 'world') {
    const CITIES = ['Berlin', 'Paris', 'Lisbon', 'Oslo', 'Rome', 'Madrid', 'Vienna', 'Prague'];
    class LineItem { constructor(j) { this.sku = 'SKU-' + (j % 500); this.qty = 1 + (j % 5); this.price = rnd() * 100; } }
    class Order {
      constructor(c, j) {
        this.customer = c;
        this.items = [new LineItem(j), new LineItem(j + 1)];
        this.total = this.items.reduce((s, x) => s + x.qty * x.price, 0);
        this.createdAt = new Date(1.7e12 + j * 1000);
      }
    }
    class Customer {
      constructor(n) {
        this.id = n;
        this.name = 'customer-' + n;
        this.address = { city: CITIES[n % CITIES.length], zip: String(10000 + (n % 90000)) };
        this.tags = new Set(['t' + (n % 13), 't' + (n % 7)]);
        this.orders = [];
        for (let j = 0; j < 3; j++) this.orders.push(new Order(this, n * 3 + j));
      }
    }
    const byId = new Map();
    while (true) {
      for (let j = 0; j < 5000; j++, i++) byId.set(i, new Customer(i));
      if (used()) { keep.push(byId); return; }
    }
  }
  throw new Error(`unknown kind ${KIND}`);
}

const t0 = Date.now();
fill();
global.gc();
global.gc();
const spaces = {};
for (const s of v8.getHeapSpaceStatistics()) spaces[s.space_name] = s.space_used_size;
console.log(JSON.stringify({
  ready: true,
  pid: process.pid,
  kind: KIND,
  mb: MB,
  build_ms: Date.now() - t0,
  memory: process.memoryUsage(),
  spaces,
  heap: v8.getHeapStatistics(),
}));
setInterval(() => {}, 1 << 30);
