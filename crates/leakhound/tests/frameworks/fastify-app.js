// A healthy fastify app: a schema'd JSON route, a hook, a bounded cache.
const fastify = require('fastify')({ logger: false });
const recent = [];
fastify.addHook('onRequest', async (req, reply) => { reply.header('x-request-id', String(Math.random())); });
fastify.get('/', {
  schema: { response: { 200: { type: 'object', properties: { ok: { type: 'boolean' }, n: { type: 'number' } } } } },
}, async (req) => {
  recent.push({ url: req.url, at: Date.now() });
  if (recent.length > 100) recent.shift();
  return { ok: true, n: recent.length };
});
const port = Number(process.env.PORT || 3000);
fastify.listen({ port, host: '127.0.0.1' }).then(() => console.log(`fastify listening on ${port}`));
