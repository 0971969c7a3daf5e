// Outcomes remembered per address and port between runs (SPEC §5): the rules (what an
// attempt teaches, how long it is believed) and an in-memory cache. The on-disk cache
// (cache-file.ts) is this cache plus reading and writing a file.
import {hostPort} from './grammar.js'
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

/**
 * How long a timed-out attempt must have waited for its timeout to say the address is
 * dead: a full second, or half the server's budget when that is shorter (0 = no limit).
 * An attempt started late in a nearly spent budget (after a slow lookup, or as the 4th
 * address of a host) timed out because the budget ended, not because the address is dead.
 */
export function timeoutEvidenceMs(budgetMs: number): number {
  return budgetMs > 0 ? Math.min(1000, budgetMs / 2) : 1000
}

/**
 * Socket errors that describe this machine, not the server (out of descriptors, buffers
 * or local ports — a busy MTA running many checks at once): they teach nothing.
 */
const LOCAL_ERRORS = new Set(['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM', 'EAGAIN', 'EADDRNOTAVAIL', 'EADDRINUSE'])

/**
 * What an attempt teaches the cache: `available` from a 220 greeting; `unavailable` from a
 * real failure (a non-220 reply, not SMTP, closed, refused, unreachable, or a timeout after
 * a fair wait — see timeoutEvidenceMs); nothing from `cancelled` (another attempt won or
 * the run was interrupted), `cached`, a short timeout or a local resource error.
 */
export function lesson(record: AttemptRecord, budgetMs = 0): Remembered | undefined {
  if (record.outcome === 'available') return 'available'
  if (!FAILED_OUTCOMES.has(record.outcome)) return undefined
  if (record.error && LOCAL_ERRORS.has(record.error)) return undefined
  const timedOut = record.outcome === 'connect-timeout' || record.outcome === 'greeting-timeout'
  if (timedOut && record.endMs - record.startMs < timeoutEvidenceMs(budgetMs)) return undefined
  return 'unavailable'
}

/** The key of address:port in the cache (and its file): `127.0.0.1:25`, `[::1]:25`. */
export const cacheKey = hostPort

export interface CacheEntry {
  readonly state: Remembered
  /** Wall-clock milliseconds (Date.now) when it was seen. */
  readonly seenAt: number
}

/** Is `entry` still fresh at `now` under `ttls`? (An entry from the future is not.) */
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
    /** The per-server budget in ms (0 = no limit), for timeoutEvidenceMs. */
    readonly budgetMs = 0,
  ) {}

  lookup(address: string, port: number): Remembered | undefined {
    const entry = this.entries.get(cacheKey(address, port))
    return entry && isFresh(entry, this.now(), this.ttls) ? entry.state : undefined
  }

  /** Returns whether the attempt taught something. */
  note(record: AttemptRecord): boolean {
    const state = lesson(record, this.budgetMs)
    if (state) this.entries.set(cacheKey(record.address, record.port), {state, seenAt: this.now()})
    return state !== undefined
  }

  async save(): Promise<void> {}
}
