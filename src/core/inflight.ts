// Sharing probes in flight (SPEC §11): requests answered at the same time that need the
// same address:port share one connection. Not a cache: an attempt is shared only while it
// runs, and it holds with --no-cache too. No module-level state: one table per factory call.
import type {AbortReason, AttemptFn, AttemptResult} from './attempt.js'
import {hostPort} from './grammar.js'

/** One attempt in flight and how many callers still wait for it. */
interface Shared {
  readonly result: Promise<AttemptResult>
  readonly controller: AbortController
  waiting: number
}

/**
 * Wrap `attempt` so that concurrent calls for one address:port share a single attempt.
 * A caller that aborts while others still wait gets its own result at once (`cancelled`,
 * or a timeout outcome) and the attempt goes on for the others; when the last one aborts,
 * the attempt is aborted with that caller's reason and its result is that caller's. A call
 * made after the attempt has ended, or has been aborted, starts a new one.
 */
export function sharingAttempts(attempt: AttemptFn): AttemptFn {
  const table = new Map<string, Shared>()

  const start = (key: string, address: string, port: number): Shared => {
    const controller = new AbortController()
    const result = attempt(address, port, controller.signal)
    const shared: Shared = {result, controller, waiting: 0}
    table.set(key, shared)
    const forget = () => table.get(key) === shared && table.delete(key)
    void result.then(forget, forget)
    controller.signal.addEventListener('abort', forget, {once: true})
    return shared
  }

  return (address, port, signal) => {
    if (signal.aborted) return Promise.resolve(abandoned(signal.reason as AbortReason, 'connect-timeout'))
    const key = hostPort(address, port)
    const shared = table.get(key) ?? start(key, address, port)
    shared.waiting++
    return new Promise<AttemptResult>((resolve) => {
      const onAbort = () => {
        shared.waiting--
        if (shared.waiting > 0) return resolve(abandoned(signal.reason as AbortReason))
        shared.controller.abort(signal.reason)
        void shared.result.then(resolve)
      }
      signal.addEventListener('abort', onAbort, {once: true})
      void shared.result.then((result) => {
        signal.removeEventListener('abort', onAbort)
        if (!signal.aborted) resolve(result)
      })
    })
  }
}

/**
 * The result of a caller that left a shared attempt still running. Whether that attempt
 * had connected is not known here, so a timeout is reported as `greeting-timeout` with
 * the error `shared attempt still running` (the cache treats both timeouts alike); a
 * caller already aborted when it calls never starts one (`connect-timeout`).
 */
function abandoned(reason: AbortReason, timeout: 'connect-timeout' | 'greeting-timeout' = 'greeting-timeout'): AttemptResult {
  if (reason === 'cancelled') return {outcome: 'cancelled'}
  return timeout === 'connect-timeout' ? {outcome: timeout} : {outcome: timeout, error: 'shared attempt still running'}
}
