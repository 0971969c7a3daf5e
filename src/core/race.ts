// Happy Eyeballs on the greeting (SPEC §4, RFC 8305), modelled on Go's net/dial.go.
// Node's autoSelectFamily races only the TCP handshake and abandons the earlier attempt
// when it starts the next one; here an attempt ends only at a greeting or a failure, and
// earlier attempts stay alive while later ones start (see docs/DESIGN.md).
import type {AbortReason, AttemptFn, AttemptOutcome, AttemptResult} from './attempt.js'
import {familyOf} from './grammar.js'

/** RFC 8305 §5 recommends 250 ms between connection attempts. */
export const DEFAULT_ATTEMPT_DELAY_MS = 250

export interface AttemptRecord extends AttemptResult {
  readonly address: string
  readonly port: number
  /** Milliseconds since the run started. */
  readonly startMs: number
  readonly endMs: number
  /** For `cached` records: what the cache remembered. */
  readonly cachedAs?: 'available' | 'unavailable'
}

export interface RaceResult {
  readonly winner?: AttemptRecord
  readonly attempts: AttemptRecord[]
}

export interface RaceOptions {
  readonly port: number
  readonly attemptDelayMs: number
  /** Aborts the whole race; its reason ('timeout' | 'cancelled') is passed to live attempts. */
  readonly signal: AbortSignal
  readonly attempt: AttemptFn
  /** Milliseconds since the run started. */
  readonly elapsed: () => number
  /** What the cache remembers of an address, if anything. */
  readonly remembered?: (address: string, port: number) => 'available' | 'unavailable' | undefined
  readonly onAttemptStart?: (address: string, port: number) => void
  readonly onAttemptEnd?: (record: AttemptRecord) => void
}

/** RFC 8305 §4: alternate families, starting with the family of the first address. */
export function interleaveFamilies(addresses: readonly string[]): string[] {
  if (addresses.length === 0) return []
  const firstFamily = familyOf(addresses[0])
  const first = addresses.filter((a) => familyOf(a) === firstFamily)
  const second = addresses.filter((a) => familyOf(a) !== firstFamily)
  const out: string[] = []
  for (let i = 0; i < Math.max(first.length, second.length); i++) {
    if (i < first.length) out.push(first[i])
    if (i < second.length) out.push(second[i])
  }
  return out
}

/**
 * Try `addresses` in interleaved order: start the next one when the latest attempt has
 * failed or after `attemptDelayMs` without an answer; the first `available` wins and every
 * other attempt is cancelled; resolves at once when every address has failed.
 */
export function raceAddresses(addresses: readonly string[], options: RaceOptions): Promise<RaceResult> {
  const {port, attemptDelayMs, signal, attempt, elapsed, remembered} = options
  const order = interleaveFamilies(addresses)
  const attempts: AttemptRecord[] = []
  const live = new Map<number, {controller: AbortController; settled: Promise<void>}>()

  return new Promise((resolve) => {
    let next = 0
    let latest = -1
    let timer: NodeJS.Timeout | undefined
    let done = false

    const settle = (winner?: AttemptRecord) => {
      if (done) return
      done = true
      clearTimeout(timer)
      signal.removeEventListener('abort', onAbort)
      const reason: AbortReason = winner ? 'cancelled' : ((signal.reason as AbortReason) ?? 'timeout')
      const pending = [...live.values()]
      for (const {controller} of pending) controller.abort(reason)
      // Torn-down attempts settle at once; collect their records before answering.
      void Promise.all(pending.map((p) => p.settled)).then(() =>
        resolve({winner, attempts: [...attempts].sort((a, b) => a.startMs - b.startMs)}),
      )
    }
    const onAbort = () => settle()

    const record = (result: AttemptResult & {address: string; cachedAs?: 'available' | 'unavailable'}, startMs: number) => {
      const entry: AttemptRecord = {...result, port, startMs, endMs: elapsed()}
      attempts.push(entry)
      options.onAttemptEnd?.(entry)
      return entry
    }

    const startNext = () => {
      clearTimeout(timer)
      while (!done && next < order.length) {
        const index = next++
        const address = order[index]
        const memory = remembered?.(address, port)
        if (memory !== undefined) {
          const entry = record({address, outcome: 'cached', cachedAs: memory}, elapsed())
          if (memory === 'available') return settle(entry)
          continue
        }
        latest = index
        const controller = new AbortController()
        const startMs = elapsed()
        options.onAttemptStart?.(address, port)
        const settled = attempt(address, port, controller.signal).then((result) => {
          live.delete(index)
          const entry = record({...result, address}, startMs)
          if (done) return
          if (result.outcome === 'available') return settle(entry)
          if (index === latest) startNext()
          else if (live.size === 0 && next >= order.length) settle()
        })
        live.set(index, {controller, settled})
        if (next < order.length && !done) timer = setTimeout(startNext, attemptDelayMs)
        return
      }
      if (!done && live.size === 0) settle()
    }

    if (signal.aborted) return settle()
    signal.addEventListener('abort', onAbort, {once: true})
    startNext()
  })
}

export const FAILED_OUTCOMES: ReadonlySet<AttemptOutcome> = new Set([
  'rejected', 'not-smtp', 'closed', 'refused', 'unreachable', 'connect-timeout', 'greeting-timeout',
])
