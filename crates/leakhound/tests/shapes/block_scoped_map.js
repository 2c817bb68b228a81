'use strict';
// A Map declared in a block (`const` inside `if { }`, as a cluster worker's or a worker
// thread's code is), kept by the request listener and also by a housekeeping interval
// and a process signal listener whose closures share the block's context: the shortest
// paths from the root to the Map go through the timer list or an emitter's `_events`,
// and V8 writes a block context's slots without names (`{1}`). The leak must still be
// named by the variable (`visits`), as an unbounded collection, not by the timer or the
// listener it lies behind. FIXED=1: the twin deletes each visit when its response ends.
const { listen } = require('../apps/common');

const FIXED = process.env.FIXED === '1';

if (process.env.PORT) {
  class Visit {
    constructor(id, url) {
      this.id = id;
      this.url = url;
      this.at = Date.now();
      this.note = ('visit ' + id).padEnd(256, '.');
    }
  }
  const visits = new Map();
  let next = 0;
  const housekeeping = setInterval(() => {
    if (visits.size > 1e9) visits.clear();
  }, 60 * 1000);
  housekeeping.unref();
  process.on('SIGUSR2', () => console.log('visits', visits.size));
  listen((req, res) => {
    const id = ++next;
    visits.set(id, new Visit(id, req.url));
    res.on('finish', () => {
      if (FIXED) visits.delete(id);
    });
    res.end('visits ' + visits.size);
  }, 'block-scoped-map');
}
