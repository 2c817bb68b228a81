'use strict';
// Per-server state in a WeakMap keyed by the (long-lived) server: each request pushes an
// audit entry onto the array that is the server's value. The key never dies, so neither
// does its value. FIXED=1: the twin keeps the last 64 entries.
const { listen } = require('../apps/common');

const FIXED = process.env.FIXED === '1';
const auditByServer = new WeakMap();

const server = listen((req, res) => {
  const audit = auditByServer.get(server);
  audit.push({ url: req.url, at: Date.now() });
  if (FIXED && audit.length > 64) audit.shift();
  res.end(String(audit.length));
}, 'weakmap-value');
auditByServer.set(server, []);
