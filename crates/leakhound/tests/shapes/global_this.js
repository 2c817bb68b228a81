'use strict';
// Shape 2b, growth off the global object: `globalThis.x = …` used as a per-request
// registry keyed by request id. FIXED=1: the twin deletes each entry when the response ends.
const { listen } = require('../apps/common');

const FIXED = process.env.FIXED === '1';
globalThis.pendingUploads = {};
let next = 0;

function trackUpload(req, res) {
  const id = 'u' + next++;
  globalThis.pendingUploads[id] = { id, url: req.url, started: Date.now(), parts: [] };
  res.on('finish', () => {
    if (FIXED) delete globalThis.pendingUploads[id];
  });
  res.end(id);
}

listen(trackUpload, 'global-this');
