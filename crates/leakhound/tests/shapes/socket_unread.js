'use strict';
// Shape 3b, objects kept only by native handles: every request opens a socket to a
// notification service and never reads or closes it; the service sends a greeting and
// keeps the connection, so each socket (kept by its handle) buffers data nobody reads.
// FIXED=1: the twin ends the socket once its message is written.
const net = require('net');
const { listen } = require('../apps/common');

const FIXED = process.env.FIXED === '1';
const service = net.createServer((c) => {
  c.write('hello ' + 'x'.repeat(2048) + '\n');
  c.on('data', () => {});
});

function notify(port, what) {
  const socket = net.connect(port, '127.0.0.1');
  socket.write(what + '\n');
  if (FIXED) {
    socket.on('data', () => {});
    socket.end();
  }
}

service.listen(0, '127.0.0.1', () => {
  const port = service.address().port;
  listen((req, res) => {
    notify(port, req.url);
    res.end('ok');
  }, 'socket-unread');
});
