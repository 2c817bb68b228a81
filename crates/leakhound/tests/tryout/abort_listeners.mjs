// ESM. Each request ties its work to the server's shutdown signal with
// shutdown.signal.addEventListener('abort', onAbort) and never removes the listener
// (no { once }, no removeEventListener): the signal's listener list grows by one per
// request, each keeping its request's context.
import http from 'node:http';
import fs from 'node:fs';
if (process.env.PID_FILE) fs.writeFileSync(process.env.PID_FILE, String(process.pid));

const shutdown = new AbortController();
process.on('SIGTERM', () => shutdown.abort());
http.createServer(async (req, res) => {
  const ctx = { req, res, trace: `t-${Math.random()}` };
  const onAbort = () => ctx.res.destroy();
  shutdown.signal.addEventListener('abort', onAbort);
  await new Promise((r) => setImmediate(r));
  res.end('done');
}).listen(Number(process.env.PORT), '127.0.0.1');
