'use strict';
// A per-connection leak (issue 16): every request adds a 'close' listener to its
// connection's socket to log how long the client stayed, and never removes it. On a
// keep-alive connection (a browser's, a load balancer's, a proxy's, open for hours) the
// listeners, and the request trails they close over, pile up for as long as the
// connection lives; node warns `MaxListenersExceededWarning: … 11 close listeners added to
// [Socket]`. socket_listener_fixed.js is its twin that removes the listener when the
// response finishes.
//
// The server keeps node's default keepAliveTimeout (5 s): a load that keeps its
// connections across phases must keep them from idling out.
const fs = require('fs');
const http = require('http');

if (process.env.PID_FILE) fs.writeFileSync(process.env.PID_FILE, String(process.pid));

const server = http.createServer((req, res) => {
  const trail = { url: req.url, started: Date.now(), agent: req.headers['user-agent'] || '' };
  // The leak: one listener per request on the connection's socket, never removed.
  req.socket.on('close', function onClientGone() {
    trail.stayed_ms = Date.now() - trail.started;
  });
  res.setHeader('content-type', 'text/plain');
  res.end('ok\n');
});

// KEEP_ALIVE_MS: a keep-alive timeout of the test's choosing (node's 5 s without it).
if (process.env.KEEP_ALIVE_MS) server.keepAliveTimeout = Number(process.env.KEEP_ALIVE_MS);

server.listen(Number(process.env.PORT), '127.0.0.1', () => {
  console.log('socket-listener listening on', process.env.PORT);
});
