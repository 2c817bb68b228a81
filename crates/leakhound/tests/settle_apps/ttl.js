'use strict';
// A TTL cache, as rate limiters' per-client windows and session stores keep one: every
// request stores an entry and arms a one-shot timer that deletes it TTL_MS later. The
// hunt's load phases are shorter than the TTL, so the final snapshot still holds every
// entry (and every pending timer) of the load phases: the three snapshots alone show a
// growing timer list and a growing cache. No leak: once the timers are due, both are
// empty again.
const { listen } = require('../apps/common');

const TTL_MS = Number(process.env.TTL_MS || 5000);
const cache = new Map();
let next = 0;

class Entry {
  constructor(url, id) {
    this.url = url;
    this.id = id;
    this.storedAt = Date.now();
    this.tags = ['ttl', 'entry-' + id];
  }
}

listen((req, res) => {
  const key = 'client-' + next++;
  cache.set(key, new Entry(req.url, key));
  setTimeout(function expireEntry() {
    cache.delete(key);
  }, TTL_MS);
  res.end('ok ' + cache.size);
}, 'ttl');
