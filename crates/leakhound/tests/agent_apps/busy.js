'use strict';
// Blocks its event loop for 2.5 s of every 3 s: an inspector call waits that long.
setInterval(() => {
  const t = Date.now();
  while (Date.now() - t < 2500) {}
}, 3000);
console.log('busy ready', process.pid);
