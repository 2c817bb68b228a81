'use strict';
// Shared helpers for the hunt test apps: listen on 127.0.0.1:$PORT, write the pid to
// $PID_FILE (so a test can check the app is gone afterwards).
const fs = require('fs');
const http = require('http');

function listen(handler, name) {
  if (process.env.PID_FILE) fs.writeFileSync(process.env.PID_FILE, String(process.pid));
  const server = http.createServer(handler);
  server.keepAliveTimeout = 30000;
  server.listen(Number(process.env.PORT), '127.0.0.1', () => console.log(name, 'listening on', process.env.PORT));
  return server;
}

module.exports = { listen };
