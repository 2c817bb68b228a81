// Shape 2a, growth off the global object: an undeclared assignment in sloppy mode makes
// `auditTrail` a property of the global object; every request adds an entry.
// FIXED=1: the twin keeps the last 50.
const { listen } = require('../apps/common');

const FIXED = process.env.FIXED === '1';

function audit(req) {
  if (typeof auditTrail === 'undefined') auditTrail = [];
  auditTrail.push({ url: req.url, at: Date.now(), agent: String(req.headers['user-agent']) });
  if (FIXED && auditTrail.length > 50) auditTrail.shift();
}

listen((req, res) => {
  audit(req);
  res.end('ok');
}, 'global-sloppy');
