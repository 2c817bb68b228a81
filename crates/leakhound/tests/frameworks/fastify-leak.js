// The fastify app with a leak: request timings kept by request id, never deleted.
const fastify = require('fastify')({ logger: false });
const timings = new Map();
fastify.addHook('onRequest', async (req) => { timings.set(req.id, { url: req.url, start: process.hrtime.bigint() }); });
fastify.get('/', async () => ({ ok: true }));
const port = Number(process.env.PORT || 3000);
fastify.listen({ port, host: '127.0.0.1' }).then(() => console.log(`fastify listening on ${port}`));
