'use strict';
// A small HTTP server on 127.0.0.1:$PORT. Each request builds a 10 KB string; with
// SHOP_LEAK=1 it also keeps it in a module-level array (the leak), without it the string
// is garbage after the answer (the fixed twin).
const http = require('http');
const leak = process.env.SHOP_LEAK === '1';
const kept = [];
http
  .createServer((req, res) => {
    const body = 'x'.repeat(10000) + Math.random();
    if (leak) kept.push(body);
    res.end(String(body.length));
  })
  .listen(Number(process.env.PORT), '127.0.0.1', () => console.log('shop listening on', process.env.PORT));
