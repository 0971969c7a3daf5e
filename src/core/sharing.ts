// One piece of work per key, shared by the callers that ask for it while it runs and reused
// for a while after (serve, SPEC §11): a decision per domain and local host (src/cli/serve.ts),
// a DNS answer per name (dns-cache.ts). No module-level state: one table per factory call.

/** A decision in flight (`until` Infinity) or finished and still reusable until `until`. */
interface Held<T> {
  readonly result: Promise<T>
  readonly controller: AbortController
  waiting: number
  until: number
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
 * caller got a result that another caller's work made.
 */
export function sharing<T>(options: SharingOptions<T>) {
  const table = new Map<string, Held<T>>()
  const forget = (key: string, held: Held<T>) => table.get(key) === held && table.delete(key)

  const start = (key: string, work: (signal: AbortSignal) => Promise<T>): Held<T> => {
    if (table.size >= options.maxEntries) table.delete(table.keys().next().value!)
    const controller = new AbortController()
    const held: Held<T> = {result: work(controller.signal), controller, waiting: 0, until: Infinity}
    table.set(key, held)
    held.result.then(
      (result) => {
        const ms = controller.signal.aborted ? 0 : options.reuseMs(result)
        if (ms > 0) held.until = options.now() + ms
        else forget(key, held)
      },
      () => forget(key, held),
    )
    return held
  }

  return (key: string, work: (signal: AbortSignal) => Promise<T>, signal: AbortSignal): Promise<{result: T; shared: boolean}> => {
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
      const onAbort = () => {
        mine.waiting--
        if (mine.waiting === 0 && mine.until === Infinity) {
          forget(key, mine)
          mine.controller.abort(signal.reason)
        }
        reject(signal.reason)
      }
      signal.addEventListener('abort', onAbort, {once: true})
      mine.result.then(
        (result) => {
          signal.removeEventListener('abort', onAbort)
          mine.waiting--
          resolve({result, shared})
        },
        (error: unknown) => {
          signal.removeEventListener('abort', onAbort)
          mine.waiting--
          reject(error)
        },
      )
    })
  }
}
