'use strict';
// The fixed twin of socket_listener.js: the same 'close' listener on the connection's
// socket per request, removed when the response finishes (or the request is aborted), so
// a keep-alive connection holds at most the listener of the request in flight.
const fs = require('fs');
const http = require('http');

if (process.env.PID_FILE) fs.writeFileSync(process.env.PID_FILE, String(process.pid));

const server = http.createServer((req, res) => {
  const trail = { url: req.url, started: Date.now(), agent: req.headers['user-agent'] || '' };
  const socket = req.socket;
  function onClientGone() {
    trail.stayed_ms = Date.now() - trail.started;
  }
  socket.on('close', onClientGone);
  // The fix: the listener goes when the response is done with the socket.
  res.on('close', () => socket.removeListener('close', onClientGone));
  res.setHeader('content-type', 'text/plain');
  res.end('ok\n');
});

// KEEP_ALIVE_MS: a keep-alive timeout of the test's choosing (node's 5 s without it).
if (process.env.KEEP_ALIVE_MS) server.keepAliveTimeout = Number(process.env.KEEP_ALIVE_MS);

server.listen(Number(process.env.PORT), '127.0.0.1', () => {
  console.log('socket-listener-fixed listening on', process.env.PORT);
});
