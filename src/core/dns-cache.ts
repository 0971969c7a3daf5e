// DNS answers held briefly for a long-lived process (serve, SPEC §11): a decision for a
// domain seen seconds ago costs no DNS round trip. Concurrent askers of one name share one
// query; a positive answer is kept for its TTL, capped; "no such name" / "no data" briefly;
// a failure not at all. No module state: one table per wrapper.
import type {MxAnswer, ResolveMx} from './mx.js'
import {canonicalName} from './grammar.js'
import {sharing} from './sharing.js'
import type {Lookup, Resolver} from './resolve.js'

export interface DnsCacheOptions {
  /** Monotonic milliseconds. */
  readonly now: () => number
  /** The longest time any answer is kept, ms. */
  readonly maxMs: number
  /** How long NXDOMAIN / NODATA is kept, ms. */
  readonly negativeMs: number
  /** Names held at most; the oldest is dropped first. */
  readonly maxEntries: number
}

/** What serve uses: 30 s at most, NXDOMAIN/NODATA 5 s, 10,000 names per table. */
export const SERVE_DNS_CACHE = {maxMs: 30_000, negativeMs: 5000, maxEntries: 10_000} as const

/**
 * `ask` behind a table (sharing.ts): a key asked while its query runs joins it; an answer is
 * reused for `lifetimeMs(answer)` ms, at most maxMs (0: forgotten at once, as is a rejection).
 * The query is the table's, not a caller's: a caller that gives up leaves it running for the
 * others (each query is bounded by the resolver's own timeouts).
 */
export function remembering<T>(ask: (key: string, signal: AbortSignal) => Promise<T>, lifetimeMs: (answer: T) => number, options: DnsCacheOptions): (key: string) => Promise<T> {
  const share = sharing<T>({now: options.now, reuseMs: (answer) => Math.min(lifetimeMs(answer), options.maxMs), maxEntries: options.maxEntries})
  const nobody = new AbortController().signal // never aborted: the shared query is nobody's to cancel
  return (key) => share(key, (signal) => ask(key, signal), nobody).then(({result}) => result)
}

/** A/AAAA answers kept for their TTL (at most maxMs; /etc/hosts answers maxMs), negative ones negativeMs, errors never. */
export function cachingResolver(resolver: Resolver, options: DnsCacheOptions): Resolver {
  const lifetime = (lookup: Lookup) => {
    if (lookup.outcome === 'resolved') return lookup.ttl === undefined ? options.maxMs : lookup.ttl * 1000
    return lookup.outcome === 'dns-error' ? 0 : options.negativeMs
  }
  const lookup = remembering(resolver, lifetime, options)
  return (name) => lookup(canonicalName(name))
}

const NEGATIVE_MX_CODES = new Set(['ENOTFOUND', 'NXDOMAIN', 'ENODATA'])

type Remembered = {answer: MxAnswer; code?: never} | {answer?: never; code: string; error: unknown}

/** MX answers kept for their TTL (at most maxMs; TTL 0: not at all); NXDOMAIN / NODATA negativeMs; other failures (SERVFAIL, timeout) never. */
export function cachingMxResolver(resolveMx: ResolveMx, options: DnsCacheOptions): ResolveMx {
  const ask = (name: string, signal: AbortSignal): Promise<Remembered> =>
    resolveMx(name, signal).then(
      (answer) => ({answer}),
      (error: unknown) => ({code: String((error as NodeJS.ErrnoException)?.code ?? error), error}),
    )
  const lifetime = (held: Remembered) => (held.answer ? held.answer.ttl * 1000 : NEGATIVE_MX_CODES.has(held.code) ? options.negativeMs : 0)
  const lookup = remembering(ask, lifetime, options)
  return async (name) => {
    const held = await lookup(canonicalName(name))
    if (held.answer) return held.answer
    throw held.error
  }
}
