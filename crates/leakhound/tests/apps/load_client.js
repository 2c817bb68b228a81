'use strict';
// A load command for `--load`: `node load_client.js N` sends N GET requests, one at a
// time, to $LEAKHOUND_URL, then appends "<url> <N>" to $RUNS_FILE (so a test can count
// its runs and see the URL it was given). An empty URL fails, as curl or k6 would.
const fs = require('fs');
const http = require('http');

const url = process.env.LEAKHOUND_URL || '';
const n = Number(process.argv[2] || 100);
if (!url) {
  console.error('load_client: LEAKHOUND_URL is empty');
  process.exit(5);
}
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
let done = 0;
function next() {
  if (done === n) {
    if (process.env.RUNS_FILE) fs.appendFileSync(process.env.RUNS_FILE, `${url} ${n}\n`);
    agent.destroy();
    return;
  }
  http
    .get(url, { agent }, (res) => {
      res.resume();
      res.on('end', () => {
        done++;
        next();
      });
    })
    .on('error', (e) => {
      console.error('load_client:', e.message);
      process.exit(6);
    });
}
next();
