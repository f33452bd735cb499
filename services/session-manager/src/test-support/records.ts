import { monotonicFactory } from 'ulid'

const nextRecordId = monotonicFactory()

/** A valid BaseSchema v1.1 request body (human origin), with overrides. */
export function requestBody(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    schema_version: '1.1',
    record_id: nextRecordId(),
    user_id: 'user-1',
    timestamp: new Date().toISOString(),
    source: 'ui',
    origin: 'human',
    performer_id: 'caregiver-1',
    ...overrides,
  }
}

/** POSTs JSON to the service and returns status and parsed body (or undefined when the connection failed). */
export async function postJson(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, unknown> } | undefined> {
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    })
    return { status: res.status, body: (await res.json()) as Record<string, unknown> }
  } catch {
    return undefined
  }
}
