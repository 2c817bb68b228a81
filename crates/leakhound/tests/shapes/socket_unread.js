'use strict';
// Shape 3b, objects kept only by native handles: every request opens a socket to a
// notification service and never reads or closes it; the service sends a greeting and
// keeps the connection, so each socket (kept by its handle) buffers data nobody reads.
// FIXED=1: the twin ends the socket once its message is written.
//
// The service runs in a process of its own (GREETER_PORT, see upstream.js), so the
// leaking sockets are client sockets only; without it, one is started in this process
// (its accepted sockets then leak too, as server sockets of their own).
const net = require('net');
const { listen } = require('../apps/common');

const FIXED = process.env.FIXED === '1';

function notify(port, what) {
  const socket = net.connect(port, '127.0.0.1');
  socket.write(what + '\n');
  if (FIXED) {
    socket.on('data', () => {});
    socket.end();
  }
}

function serve(port) {
  listen((req, res) => {
    notify(port, req.url);
    res.end('ok');
  }, 'socket-unread');
}

if (process.env.GREETER_PORT) {
  serve(Number(process.env.GREETER_PORT));
} else {
  const service = net.createServer((c) => {
    c.write('hello ' + 'x'.repeat(2048) + '\n');
    c.on('data', () => {});
  });
  service.listen(0, '127.0.0.1', () => serve(service.address().port));
}
