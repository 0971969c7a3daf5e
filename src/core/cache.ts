// Outcomes remembered per address and port between runs (SPEC §5).
// This file holds the interface the prober uses and an in-memory implementation;
// the on-disk cache implements the same interface.
import type {AttemptRecord} from './race.js'
import {FAILED_OUTCOMES} from './race.js'

export type Remembered = 'available' | 'unavailable'

export interface OutcomeCache {
  /** What is remembered of address:port now, if anything still fresh. */
  lookup(address: string, port: number): Remembered | undefined
  /** Note the outcome of a finished attempt (cancelled and cached ones are ignored). */
  note(record: AttemptRecord): void
  /** Persist what was noted; never throws. */
  save(): Promise<void>
}

export interface Ttls {
  /** Seconds an unavailable address is skipped (0 = never). */
  readonly negative: number
  /** Seconds an available address is taken as available without probing (0 = never). */
  readonly positive: number
}

export const DEFAULT_NEGATIVE_TTL = 60
export const DEFAULT_POSITIVE_TTL = 0

/** What an attempt teaches the cache: only real answers and failures, never cancellations. */
export function lesson(record: AttemptRecord): Remembered | undefined {
  if (record.outcome === 'available') return 'available'
  if (FAILED_OUTCOMES.has(record.outcome)) return 'unavailable'
  return undefined
}

export function cacheKey(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`
}

export interface CacheEntry {
  readonly state: Remembered
  /** Wall-clock milliseconds (Date.now) when it was seen. */
  readonly seenAt: number
}

/** Is `entry` still fresh at `now` under `ttls`? */
export function isFresh(entry: CacheEntry, now: number, ttls: Ttls): boolean {
  const ttl = entry.state === 'available' ? ttls.positive : ttls.negative
  return ttl > 0 && now - entry.seenAt >= 0 && now - entry.seenAt < ttl * 1000
}

/** A cache held in memory: the base of the file cache, and what tests use. */
export class MemoryCache implements OutcomeCache {
  readonly entries = new Map<string, CacheEntry>()

  constructor(
    readonly ttls: Ttls,
    readonly now: () => number = Date.now,
  ) {}

  lookup(address: string, port: number): Remembered | undefined {
    const entry = this.entries.get(cacheKey(address, port))
    return entry && isFresh(entry, this.now(), this.ttls) ? entry.state : undefined
  }

  note(record: AttemptRecord): void {
    const state = lesson(record)
    if (state) this.entries.set(cacheKey(record.address, record.port), {state, seenAt: this.now()})
  }

  async save(): Promise<void> {}
}
