'use strict';
// Shape 3c, objects kept only by native handles: every request starts watching the
// upload folder for its file and never stops; each FSWatcher (and its listener) is kept
// by its handle. FIXED=1: the twin closes its watcher when the response is done.
const fs = require('fs');
const os = require('os');
const path = require('path');
const { listen } = require('../apps/common');

const FIXED = process.env.FIXED === '1';
const uploads = fs.mkdtempSync(path.join(os.tmpdir(), 'leakhound-uploads-'));
let changes = 0;

listen((req, res) => {
  const watcher = fs.watch(uploads, function onUploadChange() {
    changes++;
  });
  res.on('finish', () => {
    if (FIXED) watcher.close();
  });
  res.end(String(changes));
}, 'watcher-per-request');
