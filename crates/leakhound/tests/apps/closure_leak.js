'use strict';
// Closure over a Buffer: each request builds a 16 KiB scratch buffer and a small
// "describe" closure; the closure is kept, and since both are created in the same
// scope, its context keeps the Buffer alive too.
const { listen } = require('./common');

const describers = [];

function handle(req, res) {
  const scratch = Buffer.alloc(16 * 1024, 1);
  const url = req.url;
  const checksum = () => scratch[0] + scratch.length;
  describers.push(function describe() {
    return url;
  }); // the leak: `describe` shares the context that holds `scratch`
  res.end('sum ' + checksum());
}

listen(handle, 'closure-leak');
