'use strict';
// Shape 3a, objects kept only by native handles: every request makes its own keep-alive
// http.Agent to call an upstream service; the agent's idle socket stays open (the upstream
// keeps connections 60 s), and the socket's handle keeps the socket, which keeps the
// agent. FIXED=1: the twin destroys its agent once the upstream call is done.
const http = require('http');
const { listen } = require('../apps/common');

const FIXED = process.env.FIXED === '1';
const upstream = http.createServer((req, res) => res.end('{"price":42}'));
upstream.keepAliveTimeout = 60000;

function fetchPrice(port, done) {
  const agent = new http.Agent({ keepAlive: true });
  http.get({ host: '127.0.0.1', port, path: '/price', agent }, (r) => {
    let body = '';
    r.setEncoding('utf8');
    r.on('data', (d) => (body += d));
    r.on('end', () => {
      if (FIXED) agent.destroy();
      done(body);
    });
  });
}

upstream.listen(0, '127.0.0.1', () => {
  const port = upstream.address().port;
  listen((req, res) => fetchPrice(port, (body) => res.end(body)), 'agent-per-request');
});
