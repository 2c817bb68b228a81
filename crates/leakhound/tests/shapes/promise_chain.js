'use strict';
// Shape 4c, a promise chain that never settles: requests are serialized on `queueTail`;
// one job waits on a lock that is never released, so every later link stays pending and
// each link's reactions keep the next. FIXED=1: the twin's job times out and settles.
const { listen } = require('../apps/common');

const FIXED = process.env.FIXED === '1';
let releaseLock = null;
const lock = new Promise((resolve) => {
  releaseLock = resolve;
});
let queueTail = Promise.resolve();
let served = 0;

function job(url) {
  const waiting = FIXED ? Promise.resolve() : lock;
  return waiting.then(() => url.length);
}

listen((req, res) => {
  const url = req.url + ' '.repeat(64) + served++;
  queueTail = queueTail.then(() => job(url));
  res.end('queued');
}, 'promise-chain');
module.exports = { releaseLock };
