import { SessionManagerEndInput, SessionManagerEndOutput } from './session-manager/end.js'
import { SessionLifecycleEvent } from './session-manager/lifecycle-event.js'
import { SessionManagerStartInput, SessionManagerStartOutput } from './session-manager/start.js'
import { SessionManagerTouchInput, SessionManagerTouchOutput } from './session-manager/touch.js'
import { SessionTaggedRecord } from './session-tagged-record.js'
import { compileValidator } from './validation.js'

// Compiled once at import; each is a RecordValidator with `check` (type guard) and `validate`.

/** @example if (!validateSessionManagerStartInput.check(body)) reject() */
export const validateSessionManagerStartInput = compileValidator(SessionManagerStartInput)
/** @example validateSessionManagerStartOutput.check(await res.json()) */
export const validateSessionManagerStartOutput = compileValidator(SessionManagerStartOutput)
/** @example validateSessionManagerEndInput.validate(body) */
export const validateSessionManagerEndInput = compileValidator(SessionManagerEndInput)
/** @example validateSessionManagerEndOutput.check(await res.json()) */
export const validateSessionManagerEndOutput = compileValidator(SessionManagerEndOutput)
/** @example validateSessionManagerTouchInput.validate(body) */
export const validateSessionManagerTouchInput = compileValidator(SessionManagerTouchInput)
/** @example validateSessionManagerTouchOutput.check(await res.json()) */
export const validateSessionManagerTouchOutput = compileValidator(SessionManagerTouchOutput)
/** @example validateSessionLifecycleEvent.check(JSON.parse(line)) */
export const validateSessionLifecycleEvent = compileValidator(SessionLifecycleEvent)
/** @example if (!validateSessionTaggedRecord.check(JSON.parse(line))) reportUntagged(line) */
export const validateSessionTaggedRecord = compileValidator(SessionTaggedRecord)
