'use strict';
// A busy HTTP server for bench/agent_overhead.py: each request builds and serializes a
// small object graph (allocation, so the young generation is collected often and the
// GC observer has entries to handle), and keeps nothing.
const http = require('http');
http
  .createServer((req, res) => {
    const items = [];
    for (let i = 0; i < 40; i++) items.push({ id: i, name: 'item-' + i, tags: ['a', 'b', String(i)] });
    const body = JSON.stringify({ url: req.url, items });
    res.setHeader('content-type', 'application/json');
    res.end(body);
  })
  .listen(Number(process.env.PORT), '127.0.0.1', () => console.log('listening', process.env.PORT));
