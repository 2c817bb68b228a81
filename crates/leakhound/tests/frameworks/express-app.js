// A healthy express app: JSON routes, a router, middleware, a bounded cache.
const express = require('express');
const app = express();
app.use(express.json());
const recent = new Map(); // bounded: at most 100 entries
app.use((req, res, next) => { res.set('x-request-id', String(Math.random())); next(); });
const api = express.Router();
api.get('/items/:id', (req, res) => {
  const item = { id: req.params.id, name: 'item ' + req.params.id, tags: ['a', 'b'], at: Date.now() };
  recent.set(req.params.id, item);
  if (recent.size > 100) recent.delete(recent.keys().next().value);
  res.json(item);
});
app.use('/api', api);
app.get('/', (req, res) => res.json({ ok: true, items: [...recent.values()].slice(0, 5).length }));
const port = Number(process.env.PORT || 3000);
app.listen(port, '127.0.0.1', () => console.log(`express listening on ${port}`));
