// The floor for the timeline latency: a bare node:http server answering every request with the
// same JSON body (FLOOR_BODY, e.g. a real timeline response), so it has the size of the real answer.
import { createServer } from 'node:http'

const body = Buffer.from(process.env.FLOOR_BODY ?? '{"ok":true}')
const server = createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length })
  res.end(body)
})
server.keepAliveTimeout = 60_000
server.listen(0, '127.0.0.1', () => {
  console.log(`{"port":${server.address().port},"msg":"listening"}`)
})
process.once('SIGTERM', () => server.close(() => process.exit(0)))
