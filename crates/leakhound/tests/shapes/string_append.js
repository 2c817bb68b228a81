'use strict';
// Shape 4f, a string grown with `+=`: every request appends a line to an in-memory access
// log that is never flushed. FIXED=1: the twin keeps only the last 4 KiB.
const { listen } = require('../apps/common');

const FIXED = process.env.FIXED === '1';
let accessLog = '';

listen((req, res) => {
  accessLog += new Date().toISOString() + ' GET ' + req.url + ' 200\n';
  if (FIXED && accessLog.length > 4096) accessLog = accessLog.slice(-4096);
  res.end(String(accessLog.length));
}, 'string-append');
