'use strict';
// Shape 4a, `once` listeners on an emitter that never emits that event again: every
// request waits for `ready` on a module-level emitter that emitted it long ago.
// FIXED=1: the twin removes its listener when the response is done.
const { EventEmitter } = require('events');
const { listen } = require('../apps/common');

const FIXED = process.env.FIXED === '1';
const database = new EventEmitter();
database.setMaxListeners(0);
let ready = false;
setTimeout(() => {
  ready = true;
  database.emit('ready');
}, 10);

listen((req, res) => {
  const url = req.url;
  const onReady = function whenReady() {
    return url.length;
  };
  database.once('ready', onReady);
  res.on('finish', () => {
    if (FIXED) database.removeListener('ready', onReady);
  });
  res.end(ready ? 'ready' : 'wait');
}, 'once-listener');
