'use strict';
// A leaky app that, once, in the middle of the first load phase, does what a DevTools
// window closing does to a hunt: an inspector session that enabled the heap profiler ends,
// and V8 clears its object ids (the agent's disable() calls ClearObjectIds()).
const inspector = require('inspector');
const { listen } = require('./common');

const RESET_AT = Number(process.env.RESET_AT || 250);
const kept = [];
let n = 0;

class Order {
  constructor(i) {
    this.i = i;
    this.items = [i, i + 1];
  }
}

listen((req, res) => {
  n += 1;
  kept.push(new Order(n));
  if (n === RESET_AT) {
    const s = new inspector.Session();
    s.connect();
    s.post('HeapProfiler.enable', () => s.disconnect());
  }
  res.end(String(n));
}, 'ids-reset');
