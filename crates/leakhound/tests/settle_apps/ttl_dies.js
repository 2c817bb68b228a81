'use strict';
// ttl.js that exits once it has served no request for EXIT_IDLE_MS (3 s by default):
// after the load, before its entries' TTL is due, so it is gone while the hunt waits for
// them. The hunt must not make up a verdict from the wait it could not finish.
const { listen } = require('../apps/common');

const TTL_MS = Number(process.env.TTL_MS || 5000);
const EXIT_IDLE_MS = Number(process.env.EXIT_IDLE_MS || 3000);
const cache = new Map();
let next = 0;
let idle = null;

listen((req, res) => {
  const key = 'client-' + next++;
  cache.set(key, { url: req.url, id: key, storedAt: Date.now() });
  setTimeout(function expireEntry() {
    cache.delete(key);
  }, TTL_MS);
  if (idle) idle.refresh();
  else idle = setTimeout(() => process.exit(0), EXIT_IDLE_MS);
  res.end('ok ' + cache.size);
}, 'ttl-dies');
