/**
 * Test support for code built on `@care/event-log`: file systems that inject faults (`FaultyFileSystem`:
 * errors such as ENOSPC/EIO on chosen calls; `PowerLossFileSystem`: crashes that keep only what was
 * made durable), small fixtures (temp dirs, sample records, segment files) and `loopTurnsDuring`.
 *
 * @example
 * import { FaultyFileSystem, tempDirs } from '@care/event-log/testing'
 * const fs = new FaultyFileSystem()
 * fs.fail('write', { errno: 'ENOSPC' })
 */
export * from './event-loop.js'
export * from './faulty-file-system.js'
export * from './log-fixtures.js'
export * from './power-loss-file-system.js'
