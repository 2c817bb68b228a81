'use strict';
// A server that ignores $PORT: it listens on a port of its own choosing (any free one)
// and says so, as an app hard-wired to port 3000 would.
const fs = require('fs');
const http = require('http');

if (process.env.PID_FILE) fs.writeFileSync(process.env.PID_FILE, String(process.pid));
const server = http.createServer((req, res) => res.end('ok'));
server.listen(0, '127.0.0.1', () => console.log('ignores-port: listening on http://localhost:' + server.address().port));
