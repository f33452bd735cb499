import { readFileSync } from 'node:fs'
import {
  type NoteSigner,
  type NoteVerifier,
  parseSignerKey,
  parseVerifierKey,
  verifierKeyOf,
} from '@care/tlog'
import { ConfigError } from '../config.js'

/**
 * Transparency settings read from the environment: `CARE_TRANSPARENCY` (`off` disables the tree),
 * `CARE_CHECKPOINT_KEY_FILE` (a signer key file written by `care-sessions keygen`; without it no
 * checkpoints are signed), `CARE_CHECKPOINT_EVERY` (records, default 1000) and
 * `CARE_CHECKPOINT_INTERVAL_MS` (default 10000) and `CARE_CHECKPOINT_POST_URL` (optional).
 *
 * @example
 * const settings = loadTransparencySettings(process.env)
 */
export interface TransparencySettings {
  /** False with `CARE_TRANSPARENCY=off`: no tree, no checkpoints, no /proofs (benchmarks, emergencies). */
  enabled?: boolean
  signer?: NoteSigner
  verifier?: NoteVerifier
  everyRecords: number
  intervalMs: number
  /** `CARE_CHECKPOINT_POST_URL`: each new checkpoint is POSTed here (a witness or an archive). */
  publishUrl?: string
}

/**
 * Thrown for an unreadable key file or a bad number: a `ConfigError`, so the service refuses to start
 * with exit code 2 like for any other configuration error.
 *
 * @example
 * try { loadTransparencySettings(env) } catch (err) { if (err instanceof TransparencyConfigError) exit(2) }
 */
export class TransparencyConfigError extends ConfigError {}

/**
 * Reads `TransparencySettings` from `env` (see the interface for the variables).
 *
 * @example
 * const { signer } = loadTransparencySettings({ CARE_CHECKPOINT_KEY_FILE: '/etc/care/log.skey' })
 */
export function loadTransparencySettings(env: Record<string, string | undefined>): TransparencySettings {
  const mode = env.CARE_TRANSPARENCY?.trim() || 'on'
  if (mode !== 'on' && mode !== 'off')
    throw new TransparencyConfigError('CARE_TRANSPARENCY must be on or off')
  if (mode === 'off') return { enabled: false, everyRecords: 1, intervalMs: 1 }
  const everyRecords = positive(env.CARE_CHECKPOINT_EVERY, 1000, 'CARE_CHECKPOINT_EVERY')
  const intervalMs = positive(env.CARE_CHECKPOINT_INTERVAL_MS, 10_000, 'CARE_CHECKPOINT_INTERVAL_MS')
  const publishUrl = env.CARE_CHECKPOINT_POST_URL?.trim() || undefined
  if (publishUrl !== undefined && !/^https?:\/\/[^\s]+$/.test(publishUrl)) {
    throw new TransparencyConfigError('CARE_CHECKPOINT_POST_URL must be an http(s) URL')
  }
  const keyFile = env.CARE_CHECKPOINT_KEY_FILE?.trim()
  if (!keyFile) return { everyRecords, intervalMs, ...(publishUrl ? { publishUrl } : {}) }
  let skey: string
  try {
    skey = readFileSync(keyFile, 'utf8').trim()
  } catch (err) {
    throw new TransparencyConfigError(
      `CARE_CHECKPOINT_KEY_FILE: cannot read ${keyFile} (${(err as Error).message})`,
    )
  }
  try {
    return {
      signer: parseSignerKey(skey),
      verifier: parseVerifierKey(verifierKeyOf(skey)),
      everyRecords,
      intervalMs,
      ...(publishUrl ? { publishUrl } : {}),
    }
  } catch (err) {
    throw new TransparencyConfigError(
      `CARE_CHECKPOINT_KEY_FILE: ${keyFile} is not a signer key (${(err as Error).message})`,
    )
  }
}

function positive(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined || value.trim() === '') return fallback
  const n = Number(value)
  if (!Number.isSafeInteger(n) || n < 1)
    throw new TransparencyConfigError(`${name} must be a positive integer`)
  return n
}
