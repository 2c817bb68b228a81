'use strict';
// Listener accumulation: every request subscribes a handler to a long-lived emitter
// (a config hub announcing reloads) and never unsubscribes.
const { EventEmitter } = require('events');
const { listen } = require('./common');

const configHub = new EventEmitter();
configHub.setMaxListeners(0);

listen((req, res) => {
  const started = Date.now();
  // The leak: one 'reload' listener per request, never removed.
  configHub.on('reload', function onReload(cfg) {
    res.locals = { cfg, started };
  });
  res.end('ok ' + configHub.listenerCount('reload'));
}, 'listener-leak');
