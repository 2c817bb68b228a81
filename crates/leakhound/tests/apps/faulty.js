'use strict';
// A healthy server that misbehaves after $FAULT_AFTER requests, as $FAULT says:
//   crash            process.exit(3)
//   close_inspector  require('inspector').close() (the debugger socket goes away)
//   status           answers every later request with $FAULT_STATUS (404 by default)
// Until then it leaks a little (so the hunt has something to look at).
const { listen } = require('./common');

const fault = process.env.FAULT || '';
const after = Number(process.env.FAULT_AFTER || 0);
const kept = [];
let served = 0;

listen((req, res) => {
  served++;
  kept.push({ n: served });
  if (fault === 'status' && served > after) res.statusCode = Number(process.env.FAULT_STATUS || 404);
  res.end('ok');
  if (served !== after) return;
  if (fault === 'crash') {
    console.error('faulty: crashing on purpose after', served, 'requests');
    process.exit(3);
  } else if (fault === 'close_inspector') {
    console.error('faulty: closing the inspector after', served, 'requests');
    require('inspector').close();
  }
}, 'faulty');
