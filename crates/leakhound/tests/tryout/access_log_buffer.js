'use strict';
// An in-memory access log kept as ONE Buffer, re-allocated longer with Buffer.concat at
// every request (some 50 bytes a request, off the JS heap): the old Buffer is dropped
// each time, so no object survives from one snapshot to the next, and the log grows
// without bound. FIXED=1: the twin keeps only the last 4 KiB.
const http = require('http');
const fs = require('fs');
if (process.env.PID_FILE) fs.writeFileSync(process.env.PID_FILE, String(process.pid));

const fixed = process.env.FIXED === '1';
let accessLog = Buffer.alloc(0);
let n = 0;
http.createServer((req, res) => {
  const line = Buffer.from(`${new Date().toISOString()} ${req.method} ${req.url} ${++n}\n`);
  accessLog = Buffer.concat([accessLog, line]);
  if (fixed && accessLog.length > 4096) accessLog = accessLog.subarray(accessLog.length - 4096);
  res.end('ok');
}).listen(Number(process.env.PORT), '127.0.0.1');
