'use strict';
// A plain http server with a tiny middleware chain; the debug middleware pushes a
// record per request into a module-level array that nothing ever trims.
const { listen } = require('./common');

const requestLog = [];

class RequestRecord {
  constructor(req, t) {
    this.method = req.method;
    this.url = req.url;
    this.t = t;
  }
}

function timing(req, res, next) {
  req.t0 = process.hrtime.bigint();
  next();
}
function debugLog(req, res, next) {
  requestLog.push(new RequestRecord(req, Date.now())); // the leak
  next();
}
function hello(req, res) {
  res.end('hello ' + requestLog.length);
}

const chain = [timing, debugLog, hello];
function run(req, res) {
  let i = 0;
  const next = () => {
    const mw = chain[i++];
    if (mw) mw(req, res, next);
  };
  next();
}

listen(run, 'middleware-leak');
