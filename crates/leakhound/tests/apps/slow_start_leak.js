'use strict';
// One Order per request kept forever, and slow answers (25 ms) for the first $SLOW_FOR
// requests (61 by default), fast ones after: load phases of equal length (`--duration`)
// then deliver very different numbers of requests.
const { listen } = require('./common');

class Order {
  constructor(id) {
    this.id = id;
    this.at = Date.now();
  }
}

const orderLog = [];
const slowFor = Number(process.env.SLOW_FOR || 61);
let served = 0;

listen((req, res) => {
  served++;
  orderLog.push(new Order(served));
  if (served <= slowFor) setTimeout(() => res.end('slow'), 25);
  else res.end('fast');
}, 'slow-start-leak');
