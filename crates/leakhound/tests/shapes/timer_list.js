'use strict';
// Shape 4d, Node's timer lists thousands deep: every request arms a 10-minute session
// expiry timeout that is never cleared, so the 600000 ms list grows by one Timeout per
// request. FIXED=1: the twin clears it when the response is done.
const { listen } = require('../apps/common');

const FIXED = process.env.FIXED === '1';
let expired = 0;

listen((req, res) => {
  const session = { url: req.url, user: 'u' + Math.random() };
  const expiry = setTimeout(function expireSession() {
    expired += session.user ? 1 : 0;
  }, 600000);
  res.on('finish', () => {
    if (FIXED) clearTimeout(expiry);
  });
  res.end('ok');
}, 'timer-list');
