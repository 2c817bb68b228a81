'use strict';
// Uncleared timer: every request starts a heartbeat interval that is never cleared.
const { listen } = require('./common');

let beats = 0;

listen((req, res) => {
  const conn = { url: req.url, at: Date.now() };
  // The leak: one 60 s interval per request, handle dropped.
  setInterval(function heartbeat() {
    beats += conn.at > 0 ? 1 : 0;
  }, 60000);
  res.end('ok');
}, 'interval-leak');
