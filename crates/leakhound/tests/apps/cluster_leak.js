'use strict';
// A node:cluster server: the primary forks $WORKERS workers (default 2) and serves
// nothing itself. Each worker keeps every request's session in a module-level Map,
// never evicted (FIXED=1: the fixed twin deletes it when the response ends).
// REPLACE_AFTER=N: cluster worker 1 exits after serving N requests and the primary forks
// a replacement (as PM2's restarts do), so a worker is replaced during the hunt.
// The primary writes its pid to $PID_FILE. SINGLE=1: no cluster, the process serves
// itself (the same server as one process, to compare).
const cluster = require('node:cluster');
const fs = require('node:fs');
const http = require('node:http');

if (cluster.isPrimary && process.env.SINGLE !== '1') {
  if (process.env.PID_FILE) fs.writeFileSync(process.env.PID_FILE, String(process.pid));
  const workers = Number(process.env.WORKERS || 2);
  for (let i = 0; i < workers; i++) cluster.fork();
  cluster.on('exit', () => {
    if (process.env.REPLACE_AFTER) cluster.fork();
  });
} else {
  class Session {
    constructor(id) {
      this.id = id;
      this.user = 'user' + (id % 1000);
      this.started = Date.now();
    }
  }
  const sessions = new Map();
  const replaceAfter = cluster.worker && cluster.worker.id === 1 ? Number(process.env.REPLACE_AFTER || 0) : 0;
  let served = 0;
  const server = http.createServer((req, res) => {
    const id = ++served;
    sessions.set(id, new Session(id));
    res.on('finish', () => {
      if (process.env.FIXED === '1') sessions.delete(id);
    });
    res.end('session ' + sessions.size);
    if (replaceAfter && served === replaceAfter) {
      // Finish what is in flight, then exit: the primary forks a replacement.
      server.close(() => process.exit(0));
      setTimeout(() => process.exit(0), 200).unref();
    }
  });
  server.keepAliveTimeout = 30000;
  server.listen(Number(process.env.PORT), '127.0.0.1');
}
