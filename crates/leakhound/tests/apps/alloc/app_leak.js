'use strict';
// A leak made in the app's own code: every request's order is remembered in a module-level
// array that nothing ever trims. `makeOrder` allocates the leaked objects.
const http = require('http');
const fs = require('fs');

const orders = [];

function makeOrder(req, n) {
  return { n, path: req.url, agent: req.headers['user-agent'] || '', at: Date.now(), lines: [n, n * 2] };
}

function handle(req, res) {
  orders.push(makeOrder(req, orders.length));
  res.end('ok ' + orders.length);
}

if (process.env.PID_FILE) fs.writeFileSync(process.env.PID_FILE, String(process.pid));
const server = http.createServer(handle);
server.keepAliveTimeout = 30000;
server.listen(Number(process.env.PORT), '127.0.0.1', () => console.log('app-leak listening on', process.env.PORT));
