'use strict';
// A metrics array of plain numbers: one latency sample per request, never trimmed.
// No object is allocated per request, only the array's element store grows.
const { listen } = require('./common');

const latencySamples = [];

listen((req, res) => {
  const t0 = process.hrtime.bigint();
  res.end('ok');
  latencySamples.push(Number(process.hrtime.bigint() - t0) / 1e6);
}, 'number-array-leak');
