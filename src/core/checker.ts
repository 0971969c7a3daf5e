// A checker built once (resolver, MX resolver, attempt, cache, clock) answering many
// requests (issue 12): the command line is the one-request case of it, `serve` the
// many-request case, with probes shared in flight and DNS answers held briefly
// (longLived). No module state: everything a checker keeps is in what it was built with.
import type {AttemptFn} from './attempt.js'
import type {OutcomeCache} from './cache.js'
import {check, type CheckOptions, type Report, type TraceEvent} from './check.js'
import {cachingMxResolver, cachingResolver, type DnsCacheOptions} from './dns-cache.js'
import type {Entry} from './grammar.js'
import {sharingAttempts} from './inflight.js'
import {lookupMx, type MxEvent, type MxResult, type ResolveMx} from './mx.js'
import type {Resolver} from './resolve.js'

/** What does not change from one request to the next: the probe options. */
export type CheckerSettings = Omit<CheckOptions, 'entries' | 'stops' | 'mustFindLocal'>

export interface CheckerDeps {
  readonly resolver: Resolver
  readonly resolveMx: ResolveMx
  readonly attempt: AttemptFn
  /** Monotonic milliseconds. */
  readonly now: () => number
  readonly cache?: OutcomeCache
}

/**
 * One request: a server list, or a domain whose MX records are the list (then the local
 * host must be found among them to defer, SPEC §10); `stops` are the local host's
 * identities (every --stop; in serve also the request's server_address).
 */
export interface Request {
  readonly list: {entries: readonly Entry[]} | {mx: string}
  readonly stops?: CheckOptions['stops']
  readonly signal?: AbortSignal
  /** The request's start on `now`'s clock (default: when check() is called): trace times count from it. */
  readonly startMs?: number
  readonly onEvent?: (event: TraceEvent) => void
  readonly onMxEvent?: (event: MxEvent) => void
}

export interface Checked {
  readonly report: Report
  /** The MX lookup, for a `{mx}` request. */
  readonly mx?: MxResult
}

export interface Checker {
  /** The MX lookup (its own budget) if asked for, then check(); a DNS failure of the MX lookup rejects (FatalError). */
  check(request: Request): Promise<Checked>
  readonly cache?: OutcomeCache
}

/** A checker over `deps`; safe to call concurrently. */
export function createChecker(settings: CheckerSettings, deps: CheckerDeps): Checker {
  return {
    cache: deps.cache,
    async check({list, stops, signal, startMs = deps.now(), onEvent, onMxEvent}) {
      const mx = 'mx' in list ? await lookupMx(list.mx, {resolveMx: deps.resolveMx, timeoutMs: settings.timeoutMs, now: deps.now, startMs, signal, onEvent: onMxEvent}) : undefined
      const entries = mx === undefined ? (list as {entries: readonly Entry[]}).entries : mx.entries
      const report = await check({...settings, entries, stops, mustFindLocal: mx !== undefined}, {resolver: deps.resolver, attempt: deps.attempt, now: deps.now, startMs, cache: deps.cache, signal, onEvent})
      return {report, mx}
    },
  }
}

/**
 * The dependencies of a long-lived checker (serve): concurrent requests share each probe in
 * flight (one connection per address:port) and each DNS query; DNS answers are held
 * briefly (dns-cache.ts), so a domain seen seconds ago costs no DNS round trip.
 */
export function longLived(deps: CheckerDeps, dnsCache: DnsCacheOptions): CheckerDeps {
  return {
    ...deps,
    resolver: cachingResolver(deps.resolver, dnsCache),
    resolveMx: cachingMxResolver(deps.resolveMx, dnsCache),
    attempt: sharingAttempts(deps.attempt),
  }
}
