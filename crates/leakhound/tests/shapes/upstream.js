'use strict';
// Remote services in a process of their own, for the shapes whose app calls out
// (agent_per_request.js, socket_unread.js), so the leaking sockets in the app are all
// client sockets: node upstream.js prints "HTTP_PORT TCP_PORT". The HTTP service answers
// every request with a small JSON body and keeps idle connections 60 s; the TCP service
// greets each connection with 2 KiB and keeps it. Exits when its stdin closes (the test
// that started it holds the pipe, so it never outlives the test).
const http = require('http');
const net = require('net');

const web = http.createServer((req, res) => res.end('{"price":42}'));
web.keepAliveTimeout = 60000;
const greeter = net.createServer((c) => {
  c.write('hello ' + 'x'.repeat(2048) + '\n');
  c.on('data', () => {});
  c.on('error', () => {});
});
web.listen(0, '127.0.0.1', () =>
  greeter.listen(0, '127.0.0.1', () => console.log(web.address().port, greeter.address().port)),
);
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();
