'use strict';
// Fails at start-up, before listening: a missing configuration value.
const fs = require('fs');
if (process.env.PID_FILE) fs.writeFileSync(process.env.PID_FILE, String(process.pid));
console.error('exits-early: DATABASE_URL is not set, giving up');
process.exit(4);
