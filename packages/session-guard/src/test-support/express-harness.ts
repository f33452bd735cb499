import type { AddressInfo } from 'node:net'
import express from 'express'
import { sessionErrorHandler, sessionGuard } from '../express/index.js'
import { type ContractRequest, type StartHarness, sendContractRequest } from './contract.js'

/** Where `express.json()` sits relative to the guard, or whether there is one at all. */
export type BodyParserPlacement = 'no parser' | 'express.json() before' | 'express.json() after'

/** A real Express server on 127.0.0.1:0, reached with fetch, as production traffic would. */
export function expressHarness(placement: BodyParserPlacement): StartHarness {
  return async (options) => {
    const app = express()
    let calls = 0
    const parser = express.json({ limit: 16 * 1024 })
    if (placement === 'express.json() before') app.use(parser)
    app.use(sessionGuard(options))
    if (placement === 'express.json() after') app.use(parser)
    app.use((req, res) => {
      calls += 1
      res.json({ session_id: req.sessionId ?? null, body: req.body ?? null })
    })
    app.use(sessionErrorHandler())
    const server = app.listen(0, '127.0.0.1')
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve)
      server.once('error', reject)
    })
    const { port } = server.address() as AddressInfo
    return {
      request: (request: ContractRequest) => sendContractRequest(fetch, `http://127.0.0.1:${port}`, request),
      handlerCalls: () => calls,
      close: () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections()
          server.close(() => resolve())
        }),
    }
  }
}
