'use strict';
// Node's pool of HTTP parsers (`parsers`, a FreeList of `lib/internal/freelist.js`, at most
// 1,000) fills up when more requests are parsed at once than before: under a load that
// grows, its `list` holds more new HTTPParsers at every snapshot. The pool is bounded by
// construction, so it is never a leak. This server makes the pool grow on purpose: it
// takes parsers out as a burst of concurrent connections would (more at each step) and
// gives them back. FIXED=1: the same server without the pool's growth (one parser taken and
// given back each time), for symmetry with the other shapes.
const { listen } = require('../apps/common');
const { parsers } = require('_http_common');

const FIXED = process.env.FIXED === '1';
let served = 0;

listen((req, res) => {
  served++;
  // At most ~2.5 parsers per 10 requests served so far: 3 steps of 300 requests stay
  // well under the pool's 1,000.
  const burst = FIXED ? 1 : Math.min(900, Math.ceil(served / 4));
  const taken = [];
  for (let i = 0; i < burst; i++) taken.push(parsers.alloc());
  for (const p of taken) parsers.free(p);
  res.end('parsers ' + parsers.list.length);
}, 'parser-pool');
