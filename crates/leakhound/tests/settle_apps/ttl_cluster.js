'use strict';
// ttl.js in node:cluster: the primary forks 2 workers and serves nothing; each worker
// keeps its own TTL cache whose entries one-shot timers delete TTL_MS later. No leak in
// any worker once the timers are due. The primary writes its pid to $PID_FILE.
const cluster = require('node:cluster');
const fs = require('node:fs');
const http = require('node:http');

if (cluster.isPrimary) {
  if (process.env.PID_FILE) fs.writeFileSync(process.env.PID_FILE, String(process.pid));
  for (let i = 0; i < 2; i++) cluster.fork();
} else {
  const TTL_MS = Number(process.env.TTL_MS || 5000);
  const cache = new Map();
  let next = 0;
  const server = http.createServer((req, res) => {
    const key = 'client-' + next++;
    cache.set(key, { url: req.url, id: key, storedAt: Date.now() });
    setTimeout(function expireEntry() {
      cache.delete(key);
    }, TTL_MS);
    res.end('ok ' + cache.size);
  });
  server.keepAliveTimeout = 30000;
  server.listen(Number(process.env.PORT), '127.0.0.1');
}
