'use strict';
// The main thread serves HTTP and hands each request's job to one worker_threads Worker,
// which keeps every job in a Map it never clears (FIXED=1: it deletes it when done):
// the leak is in the worker's heap, not the main thread's.
const { Worker, isMainThread, parentPort } = require('node:worker_threads');

if (isMainThread) {
  const { listen } = require('./common');
  const worker = new Worker(__filename);
  const waiting = new Map();
  let next = 0;
  worker.on('message', ({ id, size }) => {
    const res = waiting.get(id);
    waiting.delete(id);
    if (res) res.end('jobs ' + size);
  });
  listen((req, res) => {
    const id = next++;
    waiting.set(id, res);
    worker.postMessage({ id, path: req.url });
  }, 'thread-leak');
} else {
  class Job {
    constructor(id, path) {
      this.id = id;
      this.path = path;
      this.at = Date.now();
    }
  }
  const jobs = new Map();
  parentPort.on('message', ({ id, path }) => {
    jobs.set(id, new Job(id, path));
    if (process.env.FIXED === '1') jobs.delete(id);
    parentPort.postMessage({ id, size: jobs.size });
  });
}
