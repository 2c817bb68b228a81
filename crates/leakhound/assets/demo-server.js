'use strict';
// leakhound's bundled demo: a small shop API with a memory leak.
// Every request without a session cookie creates a Session that is stored in
// `sessions` and never expires, so the Map grows by one Session per request.
const http = require('http');
const crypto = require('crypto');

class Session {
  constructor(id, ua) {
    this.id = id;
    this.userAgent = ua;
    this.cart = [{ sku: 'SKU-' + (id.charCodeAt(0) % 50), qty: 1 }];
    this.createdAt = new Date();
  }
}

const sessions = new Map();            // <-- the leak: no expiry, no size limit

function handler(req, res) {
  let sid = /sid=([0-9a-f-]+)/.exec(req.headers.cookie || '')?.[1];
  let session = sid && sessions.get(sid);
  if (!session) {
    sid = crypto.randomUUID();
    session = new Session(sid, req.headers['user-agent'] || 'unknown');
    sessions.set(sid, session);
  }
  const body = JSON.stringify({ ok: true, items: session.cart.length, path: req.url });
  res.setHeader('content-type', 'application/json');
  res.setHeader('set-cookie', 'sid=' + sid);
  res.end(body);
}

const port = Number(process.env.PORT || 3000);
http.createServer(handler).listen(port, '127.0.0.1', () => console.log('demo shop listening on', port));
