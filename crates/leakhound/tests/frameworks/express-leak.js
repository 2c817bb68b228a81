// The express app with a leak: an audit log that is never trimmed.
const express = require('express');
const app = express();
const auditLog = [];
app.use((req, res, next) => { auditLog.push({ method: req.method, url: req.url, headers: { ...req.headers }, at: Date.now() }); next(); });
app.get('/', (req, res) => res.json({ ok: true }));
const port = Number(process.env.PORT || 3000);
app.listen(port, '127.0.0.1', () => console.log(`express listening on ${port}`));
