'use strict';
// Runs forever but never listens on any port.
const fs = require('fs');
if (process.env.PID_FILE) fs.writeFileSync(process.env.PID_FILE, String(process.pid));
console.log('never-ready: waiting for a message queue that never comes');
setInterval(() => {}, 1000);
