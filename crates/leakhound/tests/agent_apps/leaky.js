'use strict';
// Keeps 3,000 small objects every 50 ms for ever: the heap's post-GC floor rises.
const keep = [];
setInterval(() => {
  for (let i = 0; i < 3000; i++) keep.push({ i, s: 'x' + i });
}, 50);
console.log('leaky ready', process.pid);
