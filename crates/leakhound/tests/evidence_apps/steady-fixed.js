// The fixed twin of steady-leak.js: the same server under the same bounded load, but
// each request's context leaves the module-level Map when its response is done.
// LEAKHOUND_REQUESTS bounds the load (default 100000), LEAKHOUND_RATE_MS spaces the
// requests (default 5).
const http = require('http');
const inflight = new Map();
// LEAKHOUND_PREFILL_MB: that much of small objects kept from the start, so a snapshot
// takes a while (for the tests that scrape during one).
const prefill = [];
for (let i = 0; i < Number(process.env.LEAKHOUND_PREFILL_MB || 0) * 10000; i++) prefill.push({ i, s: 'p' + i });
let next = 0;
const server = http.createServer((req, res) => {
  const id = ++next;
  inflight.set(id, { id, url: req.url, headers: { ...req.headers }, body: 'x'.repeat(200) + id });
  res.on('finish', () => inflight.delete(id));
  res.end('ok');
});
server.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
  const { port } = server.address();
  console.log(`listening on ${port}`);
  const total = Number(process.env.LEAKHOUND_REQUESTS || 100000);
  let sent = 0;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const timer = setInterval(() => {
    if (sent >= total) return clearInterval(timer);
    sent++;
    // A snapshot stalls the loop; a keep-alive socket the server closed meanwhile resets
    // the next request on it. That is the app's own load, not what is watched: drop it.
    http.get({ host: '127.0.0.1', port, path: '/item/' + sent, agent }, (r) => r.resume()).on('error', () => {});
  }, Number(process.env.LEAKHOUND_RATE_MS || 5));
});
