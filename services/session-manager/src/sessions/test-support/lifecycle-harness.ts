import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { readLog } from '@care/event-log'
import pg from 'pg'
import { createIdFactory } from '../../ids/id-factory.js'
import { storedEventOf } from '../../postgres/event-chain.js'
import { PostgresSessionRepository } from '../../postgres/postgres-session-repository.js'
import { schemaNames } from '../../postgres/schema-names.js'
import { createServiceDatabase, type TestPostgres } from '../../postgres/test-support/postgres-server.js'
import { EmbeddedSessionRepository } from '../../store/embedded-session-repository.js'
import type { StoredEvent } from '../../store/event-store.js'
import { FileEventStore } from '../../store/file-event-store.js'
import { type Clock, SessionLifecycleService, type SessionPolicy } from '../session-lifecycle.js'
import type { SessionRepository, SessionState } from '../session-repository.js'
import { MemoryEventStore } from './memory-event-store.js'

/** A lifecycle under test, with what the behaviour suite needs to look inside. */
export interface LifecycleUnderTest {
  service: SessionLifecycleService<SessionState>
}

/** One store that survives service restarts: boot a service on it, list what it holds. */
export interface LifecycleStore {
  boot(policy: SessionPolicy, clock: Clock): Promise<LifecycleUnderTest>
  events(): Promise<StoredEvent[]>
  dispose(): Promise<void>
}

/** Builds stores of one kind; the behaviour suite runs once per kind. */
export interface LifecycleImplementation {
  name: string
  createStore(): Promise<LifecycleStore>
}

/** A store whose `open` builds a repository over what it holds, with a close-everything list. */
function storeOver(
  open: () => Promise<SessionRepository<SessionState>>,
  events: () => Promise<StoredEvent[]>,
  cleanup: () => Promise<void> = async () => {},
): LifecycleStore {
  const services: SessionLifecycleService<SessionState>[] = []
  return {
    async boot(policy, clock) {
      const service = new SessionLifecycleService(await open(), {
        policy,
        newId: createIdFactory(),
        clock,
        timers: false,
      })
      services.push(service)
      await service.recover()
      return { service }
    },
    events,
    async dispose() {
      await Promise.all(services.map((s) => s.close()))
      await cleanup()
    },
  }
}

/**
 * The embedded repository on an in-memory event store.
 *
 * @example
 * const store = await memoryImplementation.createStore()
 */
export const memoryImplementation: LifecycleImplementation = {
  name: 'in-memory repository',
  async createStore() {
    const store = new MemoryEventStore()
    return storeOver(
      () => EmbeddedSessionRepository.open(store.opener()),
      async () => [...store.events],
    )
  },
}

/**
 * The embedded repository on the real JSONL log, on disk in a fresh temporary directory.
 *
 * @example
 * const store = await fileImplementation.createStore()
 */
export const fileImplementation: LifecycleImplementation = {
  name: 'file store (JSONL log on disk)',
  async createStore() {
    const dir = await mkdtemp(join(tmpdir(), 'care-lifecycle-'))
    return storeOver(
      () => EmbeddedSessionRepository.open((apply) => FileEventStore.open({ dir }, apply)),
      async () => {
        const events: StoredEvent[] = []
        for await (const { record } of readLog(dir)) events.push(record as unknown as StoredEvent)
        return events
      },
      () => rm(dir, { recursive: true, force: true }),
    )
  },
}

/**
 * PostgreSQL: a fresh schema per store on the given server, the recommended owner/service roles.
 *
 * @example
 * const impl = postgresImplementation(() => server)
 */
export function postgresImplementation(server: () => TestPostgres): LifecycleImplementation {
  let database: Promise<string> | undefined
  let schemas = 0
  return {
    name: 'postgres',
    async createStore() {
      // One database per server, one schema per store: CREATE DATABASE costs half a second.
      database ??= createServiceDatabase(server())
      const url = await database
      const schema = `care_sessions_${++schemas}`
      const admin = new pg.Pool({ connectionString: url.replace('care_service@', 'postgres@'), max: 2 })
      admin.on('error', () => {})
      return storeOver(
        () =>
          PostgresSessionRepository.open({
            database: { url, poolSize: 4 },
            schema,
            ownerRole: 'care_owner',
            timers: false,
          }),
        async () => {
          const { rows } = await admin.query<{ seq: string; body: string; hash: string }>(
            `SELECT seq, body, hash FROM ${schemaNames(schema).events} ORDER BY seq`,
          )
          return rows.map(storedEventOf)
        },
        () => admin.end(),
      )
    },
  }
}
