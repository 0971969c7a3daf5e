// One piece of work per key, shared by the callers that ask for it while it runs and reused
// for a while after (serve, SPEC §11): a decision per domain and local host (src/cli/serve.ts),
// a DNS answer per name (dns-cache.ts). No module-level state: one table per factory call.

/** A decision in flight (`until` Infinity) or finished and still reusable until `until`. */
interface Held<T> {
  readonly result: Promise<T>
  readonly controller: AbortController
  waiting: number
  until: number
  /** The result, once finished and reusable. */
  value?: T
}

export interface SharingOptions<T> {
  /** Monotonic milliseconds. */
  readonly now: () => number
  /** How long a finished result may be reused, ms (0: shared only while it runs). */
  readonly reuseMs: (result: T) => number
  /** Keys held at most; the oldest is dropped first. */
  readonly maxEntries: number
}

/**
 * `share(key, work, signal)`: the result of `work` for `key`, started by the first caller and
 * joined by the others while it runs or may be reused. A caller that aborts is rejected with
 * its signal's reason at once; the work is aborted (with that reason) when the last caller
 * waiting for it has left. A failed work is forgotten at once. `shared` says whether the
 * caller got a result that another caller's work made. `share.recall(key)` gives a reusable
 * result synchronously (serve answers a remembered decision without a deadline's machinery).
 */
export function sharing<T>(options: SharingOptions<T>) {
  const table = new Map<string, Held<T>>()
  const forget = (key: string, held: Held<T>) => table.get(key) === held && table.delete(key)
  const onAbort = abortWatcher()

  /**
   * Drop the oldest entries while they are past reuse (the table is in insertion order), then
   * the oldest at all when it is full: memory follows the traffic of the last minute, not of
   * the busiest one since start. (An entry in flight at the head stops the sweep; it ends
   * within its work's deadline.)
   */
  const makeRoom = () => {
    const now = options.now()
    for (const [key, held] of table) {
      if (held.until > now) break
      table.delete(key)
    }
    if (table.size >= options.maxEntries) table.delete(table.keys().next().value!)
  }

  const start = (key: string, work: (signal: AbortSignal) => Promise<T>): Held<T> => {
    makeRoom()
    const controller = new AbortController()
    const held: Held<T> = {result: work(controller.signal), controller, waiting: 0, until: Infinity}
    table.set(key, held)
    held.result.then(
      (result) => {
        const ms = controller.signal.aborted ? 0 : options.reuseMs(result)
        if (ms <= 0) return void forget(key, held)
        held.until = options.now() + ms
        held.value = result
      },
      () => forget(key, held),
    )
    return held
  }

  const share = (key: string, work: (signal: AbortSignal) => Promise<T>, signal: AbortSignal): Promise<{result: T; shared: boolean}> => {
    if (signal.aborted) return Promise.reject(signal.reason)
    let held = table.get(key)
    if (held !== undefined && options.now() >= held.until) forget(key, held)
    held = table.get(key)
    const shared = held !== undefined
    if (held === undefined) held = start(key, work)
    const mine = held
    if (mine.until !== Infinity) return mine.result.then((result) => ({result, shared}))
    mine.waiting++
    return new Promise((resolve, reject) => {
      const unwatch = onAbort(signal, () => {
        mine.waiting--
        if (mine.waiting === 0 && mine.until === Infinity) {
          forget(key, mine)
          mine.controller.abort(signal.reason)
        }
        reject(signal.reason)
      })
      mine.result.then(
        (result) => {
          unwatch()
          mine.waiting--
          resolve({result, shared})
        },
        (error: unknown) => {
          unwatch()
          mine.waiting--
          reject(error)
        },
      )
    })
  }

  /** `recall(key)`: the finished result for `key` while it may be reused, at once (no signal, no promise); else undefined. */
  const recall = (key: string): T | undefined => {
    const held = table.get(key)
    // In flight, an entry has no value yet.
    return held !== undefined && options.now() < held.until ? held.value : undefined
  }

  return Object.assign(share, {recall, size: () => table.size})
}

/**
 * `watch(signal, callback)` → `unwatch`: one 'abort' listener per signal, however many
 * callers wait on it. A signal that many callers share (a DNS table's own, which nobody
 * aborts) would otherwise carry one listener per caller waiting: a pile-up that Node
 * reports as a possible leak past 10.
 */
function abortWatcher(): (signal: AbortSignal, callback: () => void) => () => void {
  const watched = new WeakMap<AbortSignal, {callbacks: Set<() => void>; listener: () => void}>()
  return (signal, callback) => {
    let watch = watched.get(signal)
    if (watch === undefined) {
      const callbacks = new Set<() => void>()
      const listener = () => {
        watched.delete(signal)
        for (const c of callbacks) c()
      }
      signal.addEventListener('abort', listener, {once: true})
      watched.set(signal, (watch = {callbacks, listener}))
    }
    const mine = watch
    mine.callbacks.add(callback)
    return () => {
      mine.callbacks.delete(callback)
      if (mine.callbacks.size > 0 || watched.get(signal) !== mine) return
      watched.delete(signal)
      signal.removeEventListener('abort', mine.listener)
    }
  }
}
