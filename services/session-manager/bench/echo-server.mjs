// The baseline for the start benchmark: a bare Hono JSON echo route on @hono/node-server.
import { serve } from '@hono/node-server'
import { Hono } from 'hono'

const app = new Hono()
app.post('/echo', async (c) => c.json(await c.req.json()))
const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, (info) => {
  console.log(`{"port":${info.port},"msg":"listening"}`)
})
process.once('SIGTERM', () => server.close(() => process.exit(0)))
