'use strict';
// ttl.js with the classic bug: the expiry timer deletes a key that was never stored (the
// key is built again, with the wrong prefix), so every entry stays forever. The timers
// fire and go; the cache keeps growing: a leak, whatever the wait.
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
  const n = next++;
  cache.set('client-' + n, new Entry(req.url, n));
  setTimeout(function expireEntry() {
    cache.delete('session-' + n);
  }, TTL_MS);
  res.end('ok ' + cache.size);
}, 'ttl-leak');
