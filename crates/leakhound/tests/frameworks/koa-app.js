// A healthy koa app: middleware chain, JSON body, a bounded cache.
const Koa = require('koa');
const app = new Koa();
const recent = new Map();
app.use(async (ctx, next) => { const t = Date.now(); await next(); ctx.set('x-time', String(Date.now() - t)); });
app.use(async (ctx) => {
  const key = String(Math.floor(Math.random() * 50));
  recent.set(key, { key, at: Date.now() });
  ctx.body = { ok: true, n: recent.size };
});
const port = Number(process.env.PORT || 3000);
app.listen(port, '127.0.0.1', () => console.log(`koa listening on ${port}`));
