// `smtpdcheck serve` (SPEC §11): flags → a long-lived checker (src/core/checker.ts) behind
// the policy server (src/policy/server.ts); signals; the cache file. The oclif command
// (src/commands/serve.ts) only parses and calls runServe.
import {attemptSmtp} from '../core/attempt.js'
import {MemoryCache, type OutcomeCache, type Ttls} from '../core/cache.js'
import {FileCache} from '../core/cache-file.js'
import type {CheckOptions} from '../core/check.js'
import {createChecker, longLived, type Checked, type Checker} from '../core/checker.js'
import {sharing} from '../core/sharing.js'
import {SERVE_DNS_CACHE} from '../core/dns-cache.js'
import type {DnsClient} from '../core/dns-client.js'
import {FatalError, quote, UsageError} from '../core/errors.js'
import {parseInteger, type StopGiven} from '../core/grammar.js'
import {formatEvent, formatMxEvent, reasonOf} from '../core/report.js'
import {parseListen, parseSocketMode, type Listen} from '../policy/listen.js'
import {startPolicyServer, type Decide, type Decision, type PolicyServer} from '../policy/server.js'
import {SERVE_POSITIVE_TTL, type ServeFlags} from './flags.js'
import {dnsOf, flagText, monotonicMs, probeOptions, ttlsOf} from './run.js'

/** Everything serve needs, decided from its command line before it listens. */
export interface ServeSetup {
  readonly listen: Listen[]
  readonly settings: Omit<CheckOptions, 'entries' | 'stops' | 'mustFindLocal'>
  /** Every serve --stop, parsed: identities of the local host for every request, besides its server_address. */
  readonly stops: readonly StopGiven[]
  readonly maxConnections?: number
  readonly socketMode?: number
  readonly cache?: OutcomeCache
  readonly verbose: boolean
  /** The probe outcomes' TTLs, when there is a cache (how long a decision may be reused). */
  readonly ttls?: Ttls
  readonly deps: Parameters<typeof longLived>[0]
  /** The DNS client behind deps' resolvers, closed when serve ends. */
  readonly dns: DnsClient
  readonly log: Log
}

/** How often a --cache-file is written while serving (and once at the end). */
const SAVE_EVERY_MS = 10_000

/** serve's flags → a setup; a bad value, a server word or no --listen is a UsageError. */
export function prepareServe(flags: ServeFlags, words: readonly string[]): ServeSetup {
  if (words.length > 0) throw new UsageError(`serve takes no server words: ${quote(words[0])} (the list is each recipient domain's MX records)`)
  if (!flags.listen?.length) throw new UsageError('serve needs --listen inet:HOST:PORT or unix:PATH')
  const listen = flags.listen.map((text) => parseListen(text))
  const {stops, ...probe} = probeOptions(flags)
  const settings = {...probe, sequential: false}
  const ttls = ttlsOf(flags, SERVE_POSITIVE_TTL)
  const verbose = flags.verbose ?? false
  const log = stderrLog()
  const path = flagText(flags, 'cache-file')
  const say = verbose ? (message: string) => log(`cache: ${message}`) : undefined
  const cache = flags.cache === false ? undefined : path === undefined ? new MemoryCache(ttls, Date.now, probe.timeoutMs) : new FileCache(path, ttls, {budgetMs: probe.timeoutMs, say})
  const {client, resolver, resolveMx} = dnsOf(flags, true)
  return {
    listen,
    settings,
    stops: stops ?? [],
    maxConnections: flags['max-connections'] === undefined ? undefined : parseInteger('max-connections', flags['max-connections'], 1, 1_000_000),
    socketMode: flags['socket-mode'] === undefined ? undefined : parseSocketMode(flags['socket-mode']),
    cache,
    verbose,
    ttls: cache === undefined ? undefined : ttls,
    deps: {resolver, resolveMx, attempt: attemptSmtp, now: monotonicMs, cache},
    dns: client,
    log,
  }
}

export interface Log {
  /** One line (without program name or newline). */
  (line: string): void
  /** Write what is pending now (before exit). */
  flush(): void
}

/**
 * Log lines on stderr as `smtpdcheck: …` (journald takes them as they are; a closed stderr is
 * ignored: bin/run.js). The lines of one turn of the event loop leave in one write: stderr
 * is synchronous, and a write per decision would cost a system call each.
 */
export function stderrLog(): Log {
  const pending: string[] = []
  const flush = () => {
    if (pending.length > 0) process.stderr.write(pending.join(''))
    pending.length = 0
  }
  const log = (line: string) => {
    if (pending.length === 0) setImmediate(flush)
    pending.push(`smtpdcheck: ${line}\n`)
  }
  return Object.assign(log, {flush})
}

/** A request's decision for the log: the server named, why, and whether the cache answered. */
export function decisionOf({report, mx}: Checked): Decision {
  const attempts = report.servers.flatMap((s) => s.attempts)
  const cached = attempts.length > 0 && attempts.every((a) => a.outcome === 'cached')
  const {reason, probed} = reasonOf(report, mx)
  if (report.winner) return {server: report.winner.name, note: reason, cached}
  return probed ? {note: reason, cached} : {note: reason, probed: false}
}

/** How long serve reuses a decision for the same domain and local host, at most (ms). */
export const DECISION_REUSE_MS = 1000

/**
 * How long a decision may be reused: at most DECISION_REUSE_MS, and never longer than the
 * cache would believe what it rests on (a server found up: --positive-ttl; every candidate
 * found down: --negative-ttl; without a cache, not at all). One that rests on DNS alone
 * (no candidate, null MX, no such domain) is reused for DECISION_REUSE_MS.
 */
export function reuseMs(decision: Decision, ttls: Ttls | undefined): number {
  if (decision.probed === false) return DECISION_REUSE_MS
  const ttl = ttls === undefined ? 0 : decision.server !== undefined ? ttls.positive : ttls.negative
  return Math.min(DECISION_REUSE_MS, ttl * 1000)
}

/**
 * The server's decide(): the checker on the recipient domain's MX list; the local host's
 * identities are the request's server_address and every serve --stop (`stops`); requests
 * for the same domain and server_address share one decision while it runs and reuse it
 * briefly (reuseMs); `log` gets the trace of the requests that ran the check (--verbose).
 */
export function decideWith(checker: Checker, log?: (line: string) => void, ttls?: Ttls, stops: readonly StopGiven[] = []): Decide {
  let requests = 0
  const share = sharing<Decision>({now: monotonicMs, reuseMs: (decision) => reuseMs(decision, ttls), maxEntries: 10_000})
  return async (query, signal) => {
    const identities = query.serverAddress === undefined ? stops : [{address: query.serverAddress}, ...stops]
    const work = async (shared: AbortSignal) => {
      const trace = log ? `#${++requests} ${query.domain}: ` : undefined
      const checked = await checker.check({
        list: {mx: query.domain},
        stops: identities,
        signal: shared,
        onEvent: log && ((event) => log(trace + formatEvent(event))),
        onMxEvent: log && ((event) => log(trace + formatMxEvent(event))),
      })
      return decisionOf(checked)
    }
    const {result, shared} = await share(`${query.domain} ${query.serverAddress ?? ''}`, work, signal)
    return shared ? {...result, cached: true} : result
  }
}

/**
 * Every --stop name is resolved once at start, so that a name that does not resolve is a
 * start-up error (exit 2), as for the command; each request resolves it again through the
 * DNS cache (at most 30 s old), so a changed address is followed. Returns the start-up
 * line naming the identities in use.
 */
async function checkStops(setup: ServeSetup): Promise<string> {
  const signal = AbortSignal.timeout(setup.settings.timeoutMs || 10_000)
  const described = await Promise.all(setup.stops.map(async (stop) => {
    if ('address' in stop) return stop.address
    const lookup = await setup.deps.resolver(stop.name, signal)
    if (lookup.outcome !== 'resolved') throw new FatalError(`cannot resolve --stop ${quote(stop.name)}: ${lookup.outcome}${lookup.error ? ` (${lookup.error})` : ''}`)
    return `${stop.name} (${lookup.addresses.join(' ')})`
  }))
  return `identities: each request's server_address${described.map((text) => `, ${text}`).join('')}`
}

/** Listen, answer until SIGTERM/SIGINT/SIGHUP, then close (in-flight requests answered) and exit 0. */
export async function runServe(setup: ServeSetup): Promise<void> {
  const identities = await checkStops(setup)
  const checker = createChecker(setup.settings, longLived(setup.deps, {...SERVE_DNS_CACHE, now: monotonicMs}))
  const {log} = setup
  const server = await startPolicyServer({
    listen: setup.listen,
    decide: decideWith(checker, setup.verbose ? log : undefined, setup.ttls, setup.stops),
    timeoutMs: setup.settings.timeoutMs,
    maxConnections: setup.maxConnections,
    socketMode: setup.socketMode,
    log,
  })
  for (const endpoint of server.endpoints) log(`listening on ${endpoint}`)
  log(identities)
  const saver = setup.cache instanceof FileCache ? setInterval(() => void setup.cache!.save(), SAVE_EVERY_MS).unref() : undefined
  onStopSignals(server, log, async () => {
    clearInterval(saver)
    await setup.dns.close()
    await setup.cache?.save()
  })
}

/**
 * SIGTERM, SIGINT and SIGHUP (a closed terminal) stop the server gracefully: stop accepting,
 * close idle connections, answer what is in flight (each within --timeout), exit 0. A second
 * one exits 0 at once. The other signals keep bin/run.js's rule (exit 2 at once).
 */
function onStopSignals(server: PolicyServer, log: Log, finish: () => Promise<void>): void {
  let stopping = false
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return void (log.flush(), process.exit(0))
    stopping = true
    log(`${signal}: closing (${server.connections()} connection${server.connections() === 1 ? '' : 's'} open)`)
    void server
      .close()
      .then(finish)
      .then(() => {
        log('closed')
        log.flush()
        process.exit(0)
      })
  }
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.removeAllListeners(signal)
    process.on(signal, stop)
  }
}
