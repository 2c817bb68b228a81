// addEventListener with { once } / { signal }, or removed with removeEventListener: no finding.
const ac = new AbortController();
const bus = new EventTarget();
function handle(req) {
  ac.signal.addEventListener('abort', () => req.destroy(), { once: true });
  ac.signal.addEventListener('abort', () => req.destroy(), { signal: req.signal });
  const onMsg = () => req.ok();
  bus.addEventListener('msg', onMsg);
  req.on('close', () => bus.removeEventListener('msg', onMsg));
}
module.exports = { handle };
