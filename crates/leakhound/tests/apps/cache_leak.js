'use strict';
// Unbounded cache: a Map keyed per request (request counter), never evicted; two
// entries (a quote and its hedge) per request.
const { listen } = require('./common');

class Quote {
  constructor(id) {
    this.id = id;
    this.symbol = 'SYM' + (id % 97);
    this.price = 100 + (id % 13);
    this.at = Date.now();
  }
}

const quoteCache = new Map();
let next = 0;

listen((req, res) => {
  const id = next++;
  // The leak: entries keyed by a value that never repeats.
  quoteCache.set('q' + id, new Quote(id));
  quoteCache.set('h' + id, new Quote(-id)); // and its hedge: 2 entries per request
  res.end('cached ' + quoteCache.size);
}, 'cache-leak');
