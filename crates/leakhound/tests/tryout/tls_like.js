'use strict';
// Stands for an HTTPS server met with plain HTTP: it accepts every connection on $PORT
// and closes it without an HTTP answer (as node's TLS server does with a plain-text
// request). Prints nothing.
const net = require('net');
const fs = require('fs');
if (process.env.PID_FILE) fs.writeFileSync(process.env.PID_FILE, String(process.pid));
net.createServer((socket) => {
  socket.once('data', () => socket.destroy());
}).listen(Number(process.env.PORT), '127.0.0.1');
