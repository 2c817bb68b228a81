'use strict';
// Shape 4f', a string grown with `+=` in an object's property: a stats object keeps an
// in-memory request log. FIXED=1: the twin keeps only the last 4 KiB.
const { listen } = require('../apps/common');

const FIXED = process.env.FIXED === '1';

class Stats {
  constructor() {
    this.log = '';
    this.requests = 0;
  }
}

const stats = new Stats();

listen((req, res) => {
  stats.log += 'GET ' + req.url + ' ' + Date.now() + '\n';
  if (FIXED && stats.log.length > 4096) stats.log = stats.log.slice(-4096);
  stats.requests++;
  res.end(String(stats.requests));
}, 'string-property');
