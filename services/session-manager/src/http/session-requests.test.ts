import { gzipSync } from 'node:zlib'
import { ERROR_CODES } from '@care/schemas'
import { ulid } from 'ulid'
import { describe, expect, it } from 'vitest'
import { useInProcessSessionManager } from '../test-support/in-process-service.js'
import { postJson, requestBody } from '../test-support/records.js'

const service = useInProcessSessionManager('session-requests-', { CARE_INSTANCE_ID: 'instance-under-test' })

async function startSession(): Promise<string> {
  const started = await postJson(`${service.url}/sessions.start`, requestBody())
  expect(started?.status).toBe(201)
  return started!.body.session_id as string
}

describe('session_id on touch and end: the x-session-id header, the body, or both when equal', () => {
  for (const route of ['/sessions.touch', '/sessions.end']) {
    it(`${route} takes the session from the header alone`, async () => {
      const id = await startSession()
      const res = await postJson(`${service.url}${route}`, requestBody(), { 'x-session-id': id })
      expect(res).toMatchObject({ status: 200, body: { session_id: id } })
    })

    it(`${route} takes the session from the body alone`, async () => {
      const id = await startSession()
      const res = await postJson(`${service.url}${route}`, requestBody({ session_id: id }))
      expect(res).toMatchObject({ status: 200, body: { session_id: id } })
    })

    it(`${route} accepts the header and the body when they are equal`, async () => {
      const id = await startSession()
      const res = await postJson(`${service.url}${route}`, requestBody({ session_id: id }), {
        'x-session-id': id,
      })
      expect(res).toMatchObject({ status: 200, body: { session_id: id } })
    })

    it(`${route} refuses two different values with 400 session_id_conflict, recording nothing`, async () => {
      const [a, b] = [await startSession(), await startSession()]
      const res = await postJson(`${service.url}${route}`, requestBody({ session_id: a }), {
        'x-session-id': b,
      })
      expect(res).toMatchObject({ status: 400, body: { error: 'session_id_conflict' } })
      const timeline = await fetch(`${service.url}/sessions/${a}/timeline`).then((r) => r.json())
      expect((timeline as { events: unknown[] }).events).toHaveLength(1)
    })
  }

  it('answers a retry sent once with the header and once in the body with the original output', async () => {
    const id = await startSession()
    const body = requestBody()
    const first = await postJson(`${service.url}/sessions.touch`, body, { 'x-session-id': id })
    const retry = await postJson(`${service.url}/sessions.touch`, { ...body, session_id: id })
    expect(first?.status).toBe(200)
    expect(retry).toEqual(first)
  })
})

describe('the OpenAPI document states the same rule', () => {
  it('touch and end declare the optional x-session-id header and an optional body session_id', async () => {
    type Operation = {
      parameters?: { name: string; in: string; required: boolean }[]
      requestBody: { content: { 'application/json': { schema: { required?: string[] } } } }
    }
    const doc = (await fetch(`${service.url}/openapi.json`).then((r) => r.json())) as {
      paths: Record<string, { post: Operation }>
    }
    for (const route of ['/sessions.touch', '/sessions.end']) {
      const { parameters, requestBody } = doc.paths[route]!.post
      expect(parameters).toEqual([
        expect.objectContaining({ name: 'x-session-id', in: 'header', required: false }),
      ])
      const required = requestBody.content['application/json'].schema.required ?? []
      expect(required).toContain('record_id')
      expect(required).not.toContain('session_id')
    }
  })
})

describe('error messages say what happened and what to do', () => {
  it('session_not_found on touch, idempotency_conflict, record_id_expired and record_id_in_future', async () => {
    const unknown = await postJson(`${service.url}/sessions.touch`, requestBody({ session_id: ulid() }))
    const id = await startSession()
    const body = requestBody({ session_id: id })
    await postJson(`${service.url}/sessions.touch`, body)
    const conflict = await postJson(`${service.url}/sessions.touch`, { ...body, source: 'another_source' })
    const expired = await postJson(
      `${service.url}/sessions.start`,
      requestBody({ record_id: ulid(Date.now() - 25 * 3_600_000) }),
    )
    const future = await postJson(
      `${service.url}/sessions.start`,
      requestBody({ record_id: ulid(Date.now() + 3_600_000) }),
    )
    const answers = {
      session_not_found: unknown,
      idempotency_conflict: conflict,
      record_id_expired: expired,
      record_id_in_future: future,
    }
    for (const [code, res] of Object.entries(answers)) {
      expect(res?.body.error).toBe(code)
      expect(res?.body.message).toBe(ERROR_CODES[code as keyof typeof ERROR_CODES].message)
      expect(res?.body.message).not.toBe(code)
      expect(res?.body.message).toMatch(/; /) // what happened; what to do
    }
  })
})

describe('health and readiness', () => {
  it('names this process in /healthz', async () => {
    expect(await fetch(`${service.url}/healthz`).then((r) => r.json())).toEqual({
      status: 'ok',
      instance_id: 'instance-under-test',
    })
  })
})

describe('compressed and binary bodies: a clean error, never the raw bytes', () => {
  const gzipped = gzipSync(JSON.stringify(requestBody()))

  for (const route of ['/sessions.start', '/sessions.touch', '/sessions.end']) {
    it(`${route} answers a gzip body with the worker's 415 unsupported_media_type`, async () => {
      const res = await fetch(`${service.url}${route}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-encoding': 'gzip', 'x-session-id': ulid() },
        body: gzipped,
      })
      expect(res.status).toBe(415)
      expect(await res.json()).toMatchObject({
        error: 'unsupported_media_type',
        message: 'Content-Encoding "gzip" is not supported here; send the body uncompressed.',
      })
    })
  }

  it('answers binary bytes sent as JSON with 400 malformed_json whose message holds only printable ASCII', async () => {
    const res = await fetch(`${service.url}/sessions.start`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: gzipped,
    })
    expect(res.status).toBe(400)
    const body = (await res.json()) as { error: string; message: string }
    expect(body.error).toBe('malformed_json')
    expect([...body.message].filter((ch) => (ch < ' ' || ch > '~') && ch !== '…')).toEqual([])
    expect(body.message.length).toBeLessThan(250)
  })
})
