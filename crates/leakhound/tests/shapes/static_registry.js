'use strict';
// Shape 4b, a class's static registry of its instances: every Connection registers itself
// and nothing ever unregisters it. FIXED=1: the twin removes it on close.
const { listen } = require('../apps/common');

const FIXED = process.env.FIXED === '1';

class Connection {
  static live = new Set();

  constructor(url) {
    this.url = url;
    this.openedAt = Date.now();
    this.buffer = 'b'.repeat(200) + url;
    Connection.live.add(this);
  }

  close() {
    if (FIXED) Connection.live.delete(this);
  }
}

listen((req, res) => {
  const c = new Connection(req.url);
  res.end(String(c.openedAt));
  c.close();
}, 'static-registry');
