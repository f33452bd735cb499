/**
 * How many turns the event loop took (`setImmediate` callbacks that ran) while `run` was working:
 * 0 or 1 for work that held the loop the whole time.
 *
 * @example
 * expect(await loopTurnsDuring(() => index.encodeInSlices(segment, state, 0))).toBeGreaterThan(10)
 */
export async function loopTurnsDuring(run: () => Promise<unknown>): Promise<number> {
  let turns = 0
  let counting = true
  const count = () => {
    if (!counting) return
    turns++
    setImmediate(count)
  }
  setImmediate(count)
  try {
    await run()
  } finally {
    counting = false
  }
  return turns
}
