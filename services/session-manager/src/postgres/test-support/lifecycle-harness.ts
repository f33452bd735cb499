import pg from 'pg'
import { createIdFactory } from '../../ids/id-factory.js'
import type { SessionLifecycle } from '../../sessions/session-lifecycle.js'
import { type Clock, type SessionPolicy, SessionService } from '../../sessions/session-service.js'
import { MemoryEventStore } from '../../sessions/test-support/memory-event-store.js'
import type { StoredEvent } from '../../store/event-store.js'
import { storedEventOf } from '../event-chain.js'
import { PostgresSessionService } from '../postgres-session-service.js'
import { schemaNames } from '../schema-names.js'
import { createServiceDatabase, type TestPostgres } from './postgres-server.js'

/** A lifecycle implementation under test, with what the behaviour suite needs to look inside. */
export interface LifecycleUnderTest {
  service: SessionLifecycle & { sweepExpired(): Promise<void> }
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

/**
 * The embedded service on an in-memory store.
 *
 * @example
 * const store = await embeddedImplementation.createStore()
 */
export const embeddedImplementation: LifecycleImplementation = {
  name: 'embedded (memory store)',
  async createStore() {
    const store = new MemoryEventStore()
    return {
      async boot(policy, clock) {
        const service = new SessionService<number>({ policy, newId: createIdFactory(), clock, timers: false })
        await service.recover(store.opener())
        return { service }
      },
      async events() {
        return [...store.events]
      },
      async dispose() {},
    }
  },
}

/**
 * PostgreSQL: a fresh database per store on the given server, the recommended owner/service roles.
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
      const services: PostgresSessionService[] = []
      return {
        async boot(policy, clock) {
          const service = new PostgresSessionService({
            policy,
            newId: createIdFactory(),
            clock,
            timers: false,
            database: { url, poolSize: 4 },
            schema,
            ownerRole: 'care_owner',
          })
          services.push(service)
          await service.recover()
          return { service }
        },
        async events() {
          const { rows } = await admin.query<{ seq: string; body: string; hash: string }>(
            `SELECT seq, body, hash FROM ${schemaNames(schema).events} ORDER BY seq`,
          )
          return rows.map(storedEventOf)
        },
        async dispose() {
          await Promise.all(services.map((s) => s.close()))
          await admin.end()
        },
      }
    },
  }
}
