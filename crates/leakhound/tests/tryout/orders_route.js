'use strict';
// An API with one real route: POST /api/orders (JSON body) records every order in an
// audit log that is never trimmed. Anything else is a 404, and GET /api/orders a 405.
// Listens on $PORT (3000 without it) and prints nothing.
const http = require('http');
const fs = require('fs');
if (process.env.PID_FILE) fs.writeFileSync(process.env.PID_FILE, String(process.pid));

const auditLog = [];
function json(res, code, obj) {
  res.statusCode = code;
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(obj));
}
http.createServer((req, res) => {
  const { pathname } = new URL(req.url, 'http://x');
  if (pathname !== '/api/orders') return json(res, 404, { error: 'not found' });
  if (req.method !== 'POST') return json(res, 405, { error: 'POST only' });
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    let order;
    try { order = JSON.parse(body); } catch { return json(res, 400, { error: 'bad json' }); }
    auditLog.push({ at: new Date(), order });
    json(res, 201, { id: auditLog.length });
  });
}).listen(Number(process.env.PORT || 3000), '127.0.0.1');
