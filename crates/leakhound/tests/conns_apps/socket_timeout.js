'use strict';
// Two more per-connection leaks of the same kind (issue 16): every request sets an idle
// timeout callback on its connection (`res.connection.setTimeout(ms, cb)` adds a
// 'timeout' listener to the socket each time) and a one-shot error handler
// (`req.socket.once('error', …)`, a listener until an error that never comes). Neither is
// ever removed, so both pile up on a keep-alive connection.
const fs = require('fs');
const http = require('http');

if (process.env.PID_FILE) fs.writeFileSync(process.env.PID_FILE, String(process.pid));

const server = http.createServer((req, res) => {
  const started = Date.now();
  res.connection.setTimeout(120000, () => {
    console.log('connection idle since', started);
  });
  req.socket.once('error', (e) => {
    console.log('socket error', Date.now() - started, 'ms into', req.url, e.message);
  });
  res.end('ok\n');
});

server.listen(Number(process.env.PORT), '127.0.0.1', () => {
  console.log('socket-timeout listening on', process.env.PORT);
});
