'use strict';
// Listener accumulation on `process` itself: every request registers a SIGUSR2 handler
// ("dump my state on signal") and never removes it.
const { listen } = require('./common');

process.setMaxListeners(0);

listen((req, res) => {
  const state = { url: req.url, at: Date.now() };
  process.on('SIGUSR2', function dumpState() {
    console.log(state);
  }); // the leak
  res.end('ok');
}, 'process-listener-leak');
