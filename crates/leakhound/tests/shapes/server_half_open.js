'use strict';
// Shape 3d, objects kept only by native handles, the server's end: every request sends an
// audit line to an in-process audit collector over TCP and closes its connection. The
// collector accepts with allowHalfOpen and never ends its side when a client is done, so
// every accepted socket stays open (CLOSE_WAIT), kept by its handle. Beside them, healthy
// client sockets: a shared keep-alive http.Agent (at most 2 sockets) calls a config
// service on every request. FIXED=1: the twin's collector ends each connection when the
// client has.
const http = require('http');
const net = require('net');
const { listen } = require('../apps/common');

const FIXED = process.env.FIXED === '1';
let lines = 0;

const collector = net.createServer({ allowHalfOpen: true }, function collectAudit(conn) {
  conn.setEncoding('utf8');
  conn.on('data', (d) => (lines += d.split('\n').length - 1));
  conn.on('end', () => {
    if (FIXED) conn.end();
  });
});

const config = http.createServer((req, res) => res.end('{"ttl":60}'));
const shared = new http.Agent({ keepAlive: true, maxSockets: 2 });

function audit(line) {
  const c = net.connect(collector.address().port, '127.0.0.1');
  c.end(line + '\n', () => c.destroy());
}

function readConfig(done) {
  http.get({ host: '127.0.0.1', port: config.address().port, path: '/config', agent: shared }, (r) => {
    r.resume();
    r.on('end', done);
  }).on('error', () => done());
}

collector.listen(0, '127.0.0.1', () =>
  config.listen(0, '127.0.0.1', () =>
    listen((req, res) => {
      audit('GET ' + req.url + ' ' + Date.now());
      readConfig(() => res.end(String(lines)));
    }, 'server-half-open'),
  ),
);
