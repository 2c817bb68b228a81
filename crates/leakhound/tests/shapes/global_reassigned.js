'use strict';
// Shape 2c, growth off the global object: a global re-assigned to a new, bigger array at
// every request (copy-on-write history). FIXED=1: the twin keeps the last 50.
const { listen } = require('../apps/common');

const FIXED = process.env.FIXED === '1';
global.history = [];

listen((req, res) => {
  const entry = { url: req.url, at: Date.now() };
  const kept = FIXED ? global.history.slice(-49) : global.history;
  global.history = [...kept, entry];
  res.end(String(global.history.length));
}, 'global-reassigned');
