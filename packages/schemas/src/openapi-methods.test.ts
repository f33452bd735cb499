import { describe, expect, it } from 'vitest'
import { allowedMethods } from './openapi-methods.js'

const document = {
  paths: {
    '/infer': { post: {} },
    '/sessions/{session_id}': { get: {} },
    '/sessions/{session_id}/timeline': { get: {}, delete: {} },
  },
}

describe('allowedMethods: the methods of the documented route a path matches', () => {
  it('lists the documented methods of a literal path', () => {
    expect(allowedMethods(document, '/infer')).toEqual(['POST'])
  })

  it('matches a {parameter} against one path segment and adds HEAD wherever GET is', () => {
    expect(allowedMethods(document, '/sessions/01ABC')).toEqual(['GET', 'HEAD'])
    expect(allowedMethods(document, '/sessions/01ABC/timeline')).toEqual(['GET', 'DELETE', 'HEAD'])
  })

  it('is undefined for a path no route documents', () => {
    expect(allowedMethods(document, '/nowhere')).toBeUndefined()
    expect(allowedMethods(document, '/sessions/a/b/timeline')).toBeUndefined()
    expect(allowedMethods(document, '/inferX')).toBeUndefined()
  })
})
