'use strict';
// Runs full GCs of its own, then dies after DIE_AFTER_MS (default 3 s) with exit code 7.
let win = [];
let i = 0;
setInterval(() => {
  for (let k = 0; k < 5000; k++) win.push({ i: i++ });
  if (win.length > 300000) win = [];
}, 5);
setTimeout(() => process.exit(7), Number(process.env.DIE_AFTER_MS || 3000));
console.log('dies ready', process.pid);
