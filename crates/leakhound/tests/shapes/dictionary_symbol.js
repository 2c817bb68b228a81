'use strict';
// Shape 4e, a dictionary-mode object used as a map, under a Symbol key of its owner: the
// store keeps one entry per request id under `store[kEntries]`.
// FIXED=1: the twin deletes each entry when the response is done.
const { listen } = require('../apps/common');

const FIXED = process.env.FIXED === '1';
const kEntries = Symbol('entries');

class RequestStore {
  constructor() {
    this[kEntries] = Object.create(null);
  }
  put(id, value) {
    this[kEntries][id] = value;
  }
  drop(id) {
    delete this[kEntries][id];
  }
}

const store = new RequestStore();
let next = 0;

listen((req, res) => {
  const id = 'r' + next++;
  store.put(id, { url: req.url, at: Date.now() });
  res.on('finish', () => {
    if (FIXED) store.drop(id);
  });
  res.end(id);
}, 'dictionary-symbol');
