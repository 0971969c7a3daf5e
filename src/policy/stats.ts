// serve's counters (SPEC §11): what the stats line (SIGUSR1, SIGHUP) and the metrics
// endpoint (metrics.ts) both show. One Stats per process; counters only grow (a reload
// does not reset them: Prometheus takes a drop for a restart).
import type {AttemptFn} from '../core/attempt.js'
import type {DecisionRecord} from './log.js'

/** How a request ended, for the counters: a decision, or why there was none. */
export type DecisionKind = 'defer' | 'dunno' | 'timeout' | 'error' | 'not-asked'
export const DECISION_KINDS: readonly DecisionKind[] = ['defer', 'dunno', 'timeout', 'error', 'not-asked']

/** Decision times kept for the quantiles: the latest this many. */
const SAMPLES = 4096

/** What the server tells of its connections. */
export interface ConnectionCounts {
  /** Open now. */
  readonly connections: number
  /** Connections closed because of --max-connections. */
  readonly evictions: number
}

export interface Snapshot extends ConnectionCounts {
  readonly requests: number
  readonly decisions: Readonly<Record<DecisionKind, number>>
  readonly cacheHits: number
  readonly probes: number
  readonly revalidations: number
  readonly timeouts: number
  readonly reloads: number
  /** Over the latest decisions made (not-asked requests left out), ms; NaN before the first. */
  readonly p50Ms: number
  readonly p99Ms: number
  /** Decisions timed, and their total time in ms (the summary's _count and _sum). */
  readonly timed: number
  readonly timedMs: number
  readonly uptimeS: number
}

/** The kind of a logged request (server.ts's notes for a timeout and a failed decision). */
export function kindOf(record: DecisionRecord): DecisionKind {
  if (record.domain === undefined || record.ms === undefined) return 'not-asked'
  if (record.decision === 'defer') return 'defer'
  if (record.note.startsWith('no decision within')) return 'timeout'
  if (record.note.startsWith('decision failed')) return 'error'
  return 'dunno'
}

export class Stats {
  requests = 0
  readonly decisions: Record<DecisionKind, number> = {defer: 0, dunno: 0, timeout: 0, error: 0, 'not-asked': 0}
  cacheHits = 0
  probes = 0
  revalidations = 0
  reloads = 0
  timed = 0
  timedMs = 0
  readonly #samples = new Float64Array(SAMPLES)
  readonly #started: number

  constructor(readonly now: () => number = () => performance.now()) {
    this.#started = now()
  }

  /** Count one answered request. */
  decided(record: DecisionRecord): void {
    const kind = kindOf(record)
    this.requests++
    this.decisions[kind]++
    if (record.cached) this.cacheHits++
    if (record.ms === undefined || kind === 'not-asked') return
    this.#samples[this.timed % SAMPLES] = record.ms
    this.timed++
    this.timedMs += record.ms
  }

  /** `attempt`, counting each connection it makes. */
  counting(attempt: AttemptFn): AttemptFn {
    return (address, port, signal) => {
      if (!signal.aborted) this.probes++
      return attempt(address, port, signal)
    }
  }

  /** The q-quantile (0..1) of the latest decision times, nearest rank; NaN before any. */
  quantile(q: number): number {
    const n = Math.min(this.timed, SAMPLES)
    if (n === 0) return Number.NaN
    const sorted = this.#samples.slice(0, n).sort()
    return sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))]
  }

  snapshot(server: ConnectionCounts): Snapshot {
    return {
      requests: this.requests,
      decisions: {...this.decisions},
      cacheHits: this.cacheHits,
      probes: this.probes,
      revalidations: this.revalidations,
      timeouts: this.decisions.timeout,
      reloads: this.reloads,
      p50Ms: this.quantile(0.5),
      p99Ms: this.quantile(0.99),
      timed: this.timed,
      timedMs: this.timedMs,
      uptimeS: (this.now() - this.#started) / 1000,
      connections: server.connections,
      evictions: server.evictions,
    }
  }
}

/** The stats line's fields: `requests=… defer=… … p50_ms=… p99_ms=… connections=… evictions=…`. */
export function statsFields(s: Snapshot): Record<string, number | string> {
  const ms = (value: number) => (Number.isNaN(value) ? '-' : Math.round(value))
  return {
    requests: s.requests,
    defer: s.decisions.defer,
    dunno: s.decisions.dunno,
    timeout: s.decisions.timeout,
    error: s.decisions.error,
    not_asked: s.decisions['not-asked'],
    cache_hits: s.cacheHits,
    probes: s.probes,
    revalidations: s.revalidations,
    timeouts: s.timeouts,
    p50_ms: ms(s.p50Ms),
    p99_ms: ms(s.p99Ms),
    connections: s.connections,
    evictions: s.evictions,
    reloads: s.reloads,
    uptime_s: Math.round(s.uptimeS),
  }
}
