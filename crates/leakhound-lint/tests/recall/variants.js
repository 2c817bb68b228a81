'use strict';
// Variants of the eight patterns, harder than the fixtures: the recall table in
// bench/RESULTS.md counts which are found. A LEAK comment marks a leak a rule should
// find; a KNOWN-MISS comment one it does not find yet (the test checks both, so a rule
// that learns one fails the test until the marker moves).
const http = require('http');
const events = require('events');
const fs = require('fs');
const https = require('https');

const hub = new events.EventEmitter();
const registry = new Map();
const pending = [];
const cacheByUser = {};

class Tracker {
  constructor(emitter) {
    this.emitter = emitter;
    this.timers = [];
  }
  watch(req) {
    this.emitter.on('tick', () => req.url); // LEAK: listener-per-call
    this.timers.push(setInterval(() => {}, 5000)); // KNOWN-MISS: interval-not-cleared
  }
}
const tracker = new Tracker(hub);

function bind(res) {
  const onTick = () => res.write('.');
  hub.addListener('tick', onTick); // LEAK: listener-per-call
}

async function handler(req, res) {
  tracker.watch(req);
  bind(res);
  registry.set(req.headers['x-id'] + Date.now(), { at: Date.now() }); // KNOWN-MISS: unbounded-collection
  pending.unshift({ url: req.url }); // LEAK: unbounded-collection
  cacheByUser[`${req.headers.user}:${Date.now()}`] = req.headers; // LEAK: unbounded-collection
  res.json && res.json(registry); // (hands the Map to a function: the rule then stays silent)
  let poll;
  poll = setInterval(() => {}, 1000); // LEAK: interval-not-cleared closure-keeps-large
  const agent = new https.Agent({ keepAlive: true, maxSockets: 4 }); // LEAK: agent-per-call
  https.get({ host: '127.0.0.1', agent });
  const input = fs.createReadStream('/dev/zero'); // LEAK: stream-not-consumed
  input.pause();
  const blob = await fs.promises.readFile(__filename);
  res.on('close', () => blob.length);
  hub.on('flush', function flush() { return poll; }); // LEAK: listener-per-call closure-keeps-large
  require('events').defaultMaxListeners = 0; // LEAK: max-listeners-unbounded
  res.end('ok');
}

http.createServer(handler).listen(3000, '127.0.0.1');
