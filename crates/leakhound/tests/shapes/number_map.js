'use strict';
// Counters keyed by a new number per request (a request id, a numeric user id, a
// timestamp): a Map of small integers and a Set of them. No object is allocated per
// request, only the hash tables grow. FIXED=1: the twin keeps the last 64 of each.
const { listen } = require('../apps/common');

const FIXED = process.env.FIXED === '1';
const hitsById = new Map();
const seenIds = new Set();
let next = 0;

listen((req, res) => {
  const id = ++next;
  hitsById.set(id, (hitsById.get(id) || 0) + 1);
  seenIds.add(id * 7);
  if (FIXED && hitsById.size > 64) {
    hitsById.delete(id - 64);
    seenIds.delete((id - 64) * 7);
  }
  res.end(String(hitsById.size));
}, 'number-map');
