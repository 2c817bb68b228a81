'use strict';
// A node:cluster app for the watch's isolate tests. The primary forks $WORKERS workers
// (default 2), serves nothing itself and writes its pid to $PID_FILE (WORKERS=0: no
// cluster, the process serves itself). Its workers get
// inspector ports of their own when one is opened (inspectPort 0: SIGUSR1, or an inherited
// --inspect, opens each worker's inspector on a free loopback port instead of the
// primary's port + n), as a cluster meant to be inspected in production is set up.
// Each worker serves HTTP on 127.0.0.1:$PORT and keeps every request's Session (about 1 KB)
// in a Map, never evicted (FIXED=1: deleted when the response ends).
// THREAD=1: each worker hands every request to a worker_threads Worker that keeps a Job
// per request (about 1 KB) instead: the leak then lives in the thread's heap only.
// REPLACE_AFTER_MS=N: cluster worker 1 exits N ms after it starts; the primary forks a
// replacement whenever a worker exits.
const cluster = require('node:cluster');
const fs = require('node:fs');
const http = require('node:http');
const { Worker, isMainThread, parentPort } = require('node:worker_threads');

if (!isMainThread) {
  class Job {
    constructor(id) {
      this.id = id;
      this.at = Date.now();
      this.payload = ('job ' + id).padEnd(1024, '.');
    }
  }
  const jobs = new Map();
  parentPort.on('message', (id) => {
    jobs.set(id, new Job(id));
    if (process.env.FIXED === '1') jobs.delete(id);
    parentPort.postMessage(id);
  });
} else if (cluster.isPrimary && process.env.WORKERS !== '0') {
  if (process.env.PID_FILE) fs.writeFileSync(process.env.PID_FILE, String(process.pid));
  cluster.setupPrimary({ inspectPort: 0 });
  const workers = Number(process.env.WORKERS || 2);
  for (let i = 0; i < workers; i++) cluster.fork();
  cluster.on('exit', () => {
    if (process.env.REPLACE_AFTER_MS) cluster.fork();
  });
} else {
  class Session {
    constructor(id) {
      this.id = id;
      this.user = 'user' + (id % 1000);
      this.started = Date.now();
      this.note = ('session ' + id).padEnd(1024, '.');
    }
  }
  if (process.env.WORKERS === '0' && process.env.PID_FILE) {
    fs.writeFileSync(process.env.PID_FILE, String(process.pid));
  }
  const sessions = new Map();
  const thread = process.env.THREAD === '1' ? new Worker(__filename) : null;
  const waiting = new Map();
  if (thread) {
    thread.on('message', (id) => {
      const res = waiting.get(id);
      waiting.delete(id);
      if (res) res.end('session ' + sessions.size);
    });
  }
  let served = 0;
  const server = http.createServer((req, res) => {
    const id = ++served;
    if (!thread) sessions.set(id, new Session(id));
    res.on('finish', () => {
      if (process.env.FIXED === '1') sessions.delete(id);
    });
    if (thread) {
      waiting.set(id, res);
      thread.postMessage(id);
    } else {
      res.end('session ' + sessions.size);
    }
  });
  server.listen(Number(process.env.PORT), '127.0.0.1');
  const after = Number(process.env.REPLACE_AFTER_MS || 0);
  if (after && cluster.worker && cluster.worker.id === 1) {
    setTimeout(() => process.exit(0), after);
  }
}
