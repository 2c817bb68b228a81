'use strict';
// Every request makes a Keeper whose constructor starts a 30 s keep-alive interval bound
// to it; close() would clear it, nothing calls it. 30 s is also the period of the http
// server's own `connectionsCheckingInterval`, so the server's timer sits in the same
// timer list as the leaked ones.
const http = require('http');
const fs = require('fs');
if (process.env.PID_FILE) fs.writeFileSync(process.env.PID_FILE, String(process.pid));

class Keeper {
  constructor(req) {
    this.id = req.headers['x-request-id'] || Math.random().toString(36).slice(2);
    this.pings = 0;
    this.timer = setInterval(this.ping.bind(this), 30000);
  }
  ping() { this.pings++; }
  close() { clearInterval(this.timer); }
}

http.createServer((req, res) => {
  const k = new Keeper(req);
  res.end(k.id);
}).listen(Number(process.env.PORT), '127.0.0.1');
