import { FaultyFileSystem, sampleEvent, tempDirs } from '@care/event-log/testing'
import type { SessionLifecycleEvent } from '@care/schemas'
import { afterEach, describe, expect, it } from 'vitest'
import type { StoredEvent } from './event-store.js'
import { StoreUnavailableError } from './event-store.js'
import { FileEventStore } from './file-event-store.js'

const dirs = tempDirs()
const lifecycleEvent = (i: number) => sampleEvent(i) as unknown as SessionLifecycleEvent
afterEach(() => dirs.cleanup())

async function openStore(fs: FaultyFileSystem, dir: string) {
  const recovered: StoredEvent[] = []
  const store = await FileEventStore.open({ dir, fs }, (event) => recovered.push(event))
  return { store, recovered }
}

describe('FileEventStore', () => {
  it('appends, reads back by ref, scans in order and recovers the same events on reopen', async () => {
    const dir = await dirs.make()
    const fs = new FaultyFileSystem()
    const { store } = await openStore(fs, dir)
    const appended = []
    for (let i = 1; i <= 3; i++) appended.push(await store.append(lifecycleEvent(i)))
    expect(await store.read(appended.map((a) => a.ref).reverse())).toEqual(
      appended.map((a) => a.stored).reverse(),
    )
    const readdirsBefore = fs.calls.readdir
    const scanned: StoredEvent[] = []
    for await (const event of store.scan()) scanned.push(event)
    expect(scanned).toEqual(appended.map((a) => a.stored))
    expect(fs.calls.readdir).toBeGreaterThan(readdirsBefore) // the scan went through the injected file system
    expect(store.head()).toEqual({ seq: 3, hash: appended[2]!.stored.hash })
    await store.close()
    const reopened = await openStore(new FaultyFileSystem(), dir)
    expect(reopened.recovered).toEqual(appended.map((a) => a.stored))
    await reopened.store.close()
  })

  it('turns write and read failures into StoreUnavailableError (503), never a bare error', async () => {
    const dir = await dirs.make()
    const fs = new FaultyFileSystem()
    const { store } = await openStore(fs, dir)
    const { ref } = await store.append(lifecycleEvent(1))
    fs.fail('write', { errno: 'ENOSPC' })
    await expect(store.append(lifecycleEvent(2))).rejects.toMatchObject({ code: 'ENOSPC' })
    fs.fail('read', { errno: 'EIO' })
    const readError = await store.read([ref]).catch((e: unknown) => e)
    expect(readError).toBeInstanceOf(StoreUnavailableError)
    expect(store.healthy).toBe(true)
    await store.close()
  })
})

describe('FileEventStore.sessionEvents', () => {
  it("reads a closed session segment by segment and opens no index after its end's segment", async () => {
    const dir = await dirs.make()
    const event = (i: number, kind: 'session.start' | 'session.touch' | 'session.end', session: number) =>
      sampleEvent(i, kind, session) as unknown as SessionLifecycleEvent
    const first = await FileEventStore.open({ dir, maxFileBytes: 2500 }, () => {})
    const mine: StoredEvent[] = []
    mine.push((await first.append(event(1, 'session.start', 1))).stored)
    for (let i = 2; i <= 8; i++) await first.append(event(i, 'session.start', i))
    mine.push((await first.append(event(9, 'session.touch', 1))).stored)
    for (let i = 10; i <= 14; i++) await first.append(event(i, 'session.touch', i - 8))
    const end = await first.append(event(15, 'session.end', 1))
    mine.push(end.stored)
    for (let i = 16; i <= 60; i++) await first.append(event(i, 'session.touch', 2))
    await first.close()

    const opened: string[] = []
    const fs = new FaultyFileSystem()
    const open = fs.open.bind(fs)
    fs.open = (path, mode) => {
      opened.push(path.slice(path.lastIndexOf('/') + 1))
      return open(path, mode)
    }
    const store = await FileEventStore.open({ dir, fs, indexMissing: false }, () => {})
    const { refs, events } = await store.sessionEvents(sampleEvent(1).session_id as string)
    expect(events).toEqual(mine)
    expect(await store.read(refs)).toEqual(mine)
    const indexes = opened.filter((name) => name.endsWith('.idx')).map((name) => Number(/\d+/.exec(name)![0]))
    expect(indexes.length).toBeGreaterThan(0)
    expect(Math.max(...indexes)).toBe(end.ref.file)
    const segments = opened
      .filter((name) => name.endsWith('.jsonl'))
      .map((name) => Number(/\d+/.exec(name)![0]))
    expect(Math.max(...segments)).toBeGreaterThan(end.ref.file + 3) // the log goes on well after it
    await store.close()
  })
})
