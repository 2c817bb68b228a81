'use strict';
// A leak made inside a dependency called from the app: `tiny-registry` (a package under
// node_modules, copied there by the test) keeps every entry it is given. The app's
// `registerVisit` is the frame that calls into it.
const http = require('http');
const fs = require('fs');
const registry = require('tiny-registry');

function registerVisit(req) {
  registry.register(req.url, req.headers['user-agent'] || '');
}

function handle(req, res) {
  registerVisit(req);
  res.end('ok ' + registry.size());
}

if (process.env.PID_FILE) fs.writeFileSync(process.env.PID_FILE, String(process.pid));
const server = http.createServer(handle);
server.keepAliveTimeout = 30000;
server.listen(Number(process.env.PORT), '127.0.0.1', () => console.log('pkg-leak listening on', process.env.PORT));
