import type { Parameters as FcParameters } from 'fast-check'

/** `CARE_FAULTS_SCALE=long` (set by `pnpm test:faults --long`) runs the large version of every suite. */
export const LONG = process.env.CARE_FAULTS_SCALE === 'long'

/** Picks the CI-sized or the long-sized number. */
export function scaled(ci: number, long: number): number {
  return LONG ? long : ci
}

/** A per-test time budget that grows with the long run. */
export function timeoutMs(ci: number, long = ci * 20): number {
  return scaled(ci, long)
}

const seedText = process.env.CARE_FAULTS_SEED?.trim()
const pathText = process.env.CARE_FAULTS_PATH?.trim()

/**
 * fast-check parameters for `numRuns` runs (CI or long). `CARE_FAULTS_SEED=<n>` (and optionally
 * `CARE_FAULTS_PATH=<path>` from a failure report) replays one run exactly; the seed is printed so the
 * log of a run says how to replay it. Without it fast-check picks a seed and prints seed and path on
 * failure, with the shrunk counterexample.
 */
export function fcRuns<T>(name: string, ci: number, long: number): FcParameters<T> {
  const params: FcParameters<T> = { numRuns: scaled(ci, long) }
  if (seedText) {
    const seed = Number(seedText)
    if (!Number.isSafeInteger(seed)) throw new Error(`CARE_FAULTS_SEED=${seedText} is not an integer`)
    params.seed = seed
    if (pathText) params.path = pathText
    console.log(`[faults] ${name}: seed ${seed}${pathText ? ` path ${pathText}` : ''}`)
  }
  return params
}

/** A small deterministic PRNG (mulberry32) for choices inside one run, seeded from fast-check. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
