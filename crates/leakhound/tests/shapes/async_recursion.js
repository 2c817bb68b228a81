'use strict';
// Shape 4c', a promise chain that never settles, built by recursion: a consumer waits for
// the next request and then returns a call to itself, so each async call's promise is
// resolved with the next one's and stays pending; the newest link is held by the
// variable `wakeConsumer`. FIXED=1: the twin loops instead of returning the recursion.
const { listen } = require('../apps/common');

const FIXED = process.env.FIXED === '1';
let wakeConsumer = null;
let consumed = 0;

function nextRequest() {
  return new Promise((resolve) => {
    wakeConsumer = resolve;
  });
}

async function consume() {
  const url = await nextRequest();
  consumed += url.length > 0 ? 1 : 0;
  return consume();
}

async function consumeLoop() {
  for (;;) {
    const url = await nextRequest();
    consumed += url.length > 0 ? 1 : 0;
  }
}

if (FIXED) consumeLoop();
else consume();

listen((req, res) => {
  if (wakeConsumer) wakeConsumer(req.url + ' '.repeat(64));
  res.end(String(consumed));
}, 'async-recursion');
