'use strict';
// When each client was last seen, in a plain object keyed by a new numeric id per request:
// the values are numbers (timestamps), so no object a leak could be counted by appears;
// only the object's element store grows. FIXED=1: the twin keys by id % 64 (a ring of
// slots; `delete` of old ids would leave holes in a store that still grows).
const { listen } = require('../apps/common');

const FIXED = process.env.FIXED === '1';
const lastSeenById = {};
let next = 0;

listen((req, res) => {
  const id = ++next;
  lastSeenById[FIXED ? id % 64 : id] = Date.now();
  res.end('ok');
}, 'number-object');
