import Type, { type Static } from 'typebox'
import { SessionManagerEndOutput } from './end.js'
import { SessionManagerStartOutput } from './start.js'
import { SessionManagerTouchOutput } from './touch.js'

/**
 * Any event session_manager records in its lifecycle log, told apart by `event`.
 *
 * @example
 * if (event.event === 'session.end') console.log(event.reason)
 */
export const SessionLifecycleEvent = Type.Union([
  SessionManagerStartOutput,
  SessionManagerTouchOutput,
  SessionManagerEndOutput,
])
export type SessionLifecycleEvent = Static<typeof SessionLifecycleEvent>
