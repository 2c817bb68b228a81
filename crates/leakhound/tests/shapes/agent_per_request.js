'use strict';
// Shape 3a, objects kept only by native handles: every request makes its own keep-alive
// http.Agent to call an upstream service; the agent's idle socket stays open (the upstream
// keeps connections 60 s), and the socket's handle keeps the socket, which keeps the
// agent. FIXED=1: the twin destroys its agent once the upstream call is done.
//
// The upstream runs in a process of its own (UPSTREAM_PORT, see upstream.js), as a remote
// service would: the leaking sockets here are all client sockets, while the app's own
// server sockets (the load's keep-alive connections) stay open and healthy beside them.
// Without UPSTREAM_PORT an upstream is started in this process (its accepted sockets then
// leak too, as server sockets of their own).
const http = require('http');
const { listen } = require('../apps/common');

const FIXED = process.env.FIXED === '1';

// What the twin does with an agent once its call is done.
function release(agent) {
  if (FIXED) agent.destroy();
}

function fetchPrice(port, done) {
  const agent = new http.Agent({ keepAlive: true });
  http.get({ host: '127.0.0.1', port, path: '/price', agent }, (r) => {
    let body = '';
    r.setEncoding('utf8');
    r.on('data', (d) => (body += d));
    r.on('end', () => {
      release(agent);
      done(body);
    });
  }).on('error', () => {
    release(agent);
    done('upstream error');
  });
}

function serve(port) {
  listen((req, res) => fetchPrice(port, (body) => res.end(body)), 'agent-per-request');
}

if (process.env.UPSTREAM_PORT) {
  serve(Number(process.env.UPSTREAM_PORT));
} else {
  const upstream = http.createServer((req, res) => res.end('{"price":42}'));
  upstream.keepAliveTimeout = 60000;
  upstream.listen(0, '127.0.0.1', () => serve(upstream.address().port));
}
