'use strict';
// The control: per-request garbage only, plus a bounded ring buffer of recent requests.
const { listen } = require('./common');

const RING = 64;
const recent = new Array(RING).fill(null);
let pos = 0;

listen((req, res) => {
  const garbage = [];
  for (let i = 0; i < 50; i++) garbage.push({ i, s: 'x' + i });
  recent[pos] = { url: req.url, at: Date.now(), n: garbage.length };
  pos = (pos + 1) % RING;
  res.end(JSON.stringify({ n: garbage.length, pos }));
}, 'no-leak');
