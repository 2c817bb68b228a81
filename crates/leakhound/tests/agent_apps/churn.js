'use strict';
// An app that runs full (mark-compact) GCs of its own about once a second: it keeps a
// window of objects long enough for them to be promoted, then drops it. Nothing leaks.
let win = [];
let i = 0;
setInterval(() => {
  for (let k = 0; k < 5000; k++) win.push({ i: i++, s: 'x' + i });
  if (win.length > 300000) win = [];
}, 5);
console.log('churn ready', process.pid);
