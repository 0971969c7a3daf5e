// Freshness of remembered "available" answers in a long-lived process (serve, SPEC §11):
// an available address remembered for more than a few seconds is still answered from the
// cache, and probed again in the background, one probe at a time per address, so that under
// steady traffic a primary that goes down is noticed within seconds and no request waits
// on a probe. No module state: one table per wrapper.
import type {AttemptFn} from './attempt.js'
import {cacheKey, type MemoryCache, type OutcomeCache} from './cache.js'

/** serve's rule: an available answer older than this is re-probed when it is used. */
export const REVALIDATE_AFTER_MS = 2000

export interface RevalidateOptions {
  /** The (shared) attempt function: a request that needs the address meanwhile joins the probe. */
  readonly attempt: AttemptFn
  /** Monotonic milliseconds, for the attempt record. */
  readonly now: () => number
  /** Age (wall clock, the cache's own) past which an available answer is re-probed. */
  readonly afterMs: number
  /** Each background probe's budget in ms (--timeout; 0: none). */
  readonly budgetMs: number
  /** Ends every background probe; none starts after it. */
  readonly signal: AbortSignal
  /** Told of each background probe started (the counters). */
  readonly onProbe?: (address: string, port: number) => void
}

/**
 * `cache` whose lookups of a stale available answer start a background probe of that
 * address (unless one runs): the answer is served as it is, and the probe's outcome goes
 * into the cache as any attempt's (cache.ts `lesson`: a refusal or a timeout after a fair
 * wait makes it unavailable; a cancelled probe teaches nothing).
 */
export function revalidating(cache: MemoryCache, options: RevalidateOptions): OutcomeCache {
  const running = new Set<string>()

  const probe = (address: string, port: number, key: string) => {
    running.add(key)
    options.onProbe?.(address, port)
    const controller = new AbortController()
    const stop = () => controller.abort('cancelled')
    options.signal.addEventListener('abort', stop, {once: true})
    const timer = options.budgetMs > 0 ? setTimeout(() => controller.abort('timeout'), options.budgetMs) : undefined
    const startMs = options.now()
    void options.attempt(address, port, controller.signal).then((result) => {
      clearTimeout(timer)
      options.signal.removeEventListener('abort', stop)
      running.delete(key)
      if (!options.signal.aborted) cache.note({...result, address, port, startMs, endMs: options.now()})
    })
  }

  return {
    lookup(address, port) {
      const state = cache.lookup(address, port)
      if (state !== 'available' || options.signal.aborted) return state
      const key = cacheKey(address, port)
      const entry = cache.entries.get(key)
      if (entry !== undefined && cache.now() - entry.seenAt >= options.afterMs && !running.has(key)) probe(address, port, key)
      return state
    },
    note: (record) => void cache.note(record),
    save: () => cache.save(),
  }
}
