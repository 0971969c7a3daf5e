// `smtpdcheck serve` (SPEC §11): flags → a long-lived checker (src/core/checker.ts) behind
// the policy server (src/policy/server.ts) or one stdio connection; the log, counters,
// metrics, signals (reload, stats, drain) and the cache file. The oclif command
// (src/commands/serve.ts) only parses and calls runServe (or runQuery, src/cli/query.ts).
import {attemptSmtp} from '../core/attempt.js'
import {MemoryCache, type OutcomeCache, type Ttls} from '../core/cache.js'
import {FileCache} from '../core/cache-file.js'
import {stopUnresolved, type CheckOptions} from '../core/check.js'
import {createChecker, longLived, type CheckerDeps, type Checked, type Checker} from '../core/checker.js'
import {sharing} from '../core/sharing.js'
import {SERVE_DNS_CACHE} from '../core/dns-cache.js'
import {quote, UsageError} from '../core/errors.js'
import type {DnsClient} from '../core/dns-client.js'
import {hostPort, parseInteger, type StopGiven} from '../core/grammar.js'
import {formatEvent, formatMxEvent, reasonOf} from '../core/report.js'
import {REVALIDATE_AFTER_MS} from '../core/revalidate.js'
import {parseListen, parseSocketMode, resolveListen, type Listen} from '../policy/listen.js'
import {createLog, stderrIsJournal, type Fields, type Log} from '../policy/log.js'
import {startMetrics, type MetricsServer} from '../policy/metrics.js'
import {serveStream, startPolicyServer, type Decide, type Decision, type Query, type Recall, type ServerStats} from '../policy/server.js'
import {Stats, statsFields} from '../policy/stats.js'
import {postlogWriter, sameFile, stdioStream} from '../policy/stdio.js'
import {SERVE_POSITIVE_TTL, type ServeFlags} from './flags.js'
import {dnsOf, flagText, monotonicMs, probeOptions, ttlsOf} from './run.js'

export type {Log} from '../policy/log.js'

/** Everything serve needs, decided from its command line before it listens. */
export interface ServeSetup {
  /** --listen endpoints (names resolved at start), or none with --stdio. */
  readonly listen: Listen[]
  readonly stdio: boolean
  readonly metrics?: Listen & {kind: 'inet'}
  readonly settings: Omit<CheckOptions, 'entries' | 'stops' | 'mustFindLocal'>
  /** Every serve --stop, parsed: identities of the local host for every request, besides its server_address. */
  readonly stops: readonly StopGiven[]
  readonly maxConnections?: number
  readonly socketMode?: number
  /** --no-cache: no outcome cache; else in memory, and in this file if given. */
  readonly cache: false | {file?: string}
  readonly verbose: boolean
  /** The probe outcomes' TTLs (how long a decision may be reused rests on them). */
  readonly ttls: Ttls
  /** The checker's dependencies, less the cache (made anew at start and on SIGHUP). */
  readonly deps: Omit<CheckerDeps, 'cache'>
  /** The DNS servers asked, for the start-up line. */
  readonly dns: string
  /** The DNS client behind deps' resolvers (one for serve's lifetime), closed when serve ends. */
  readonly dnsClient: DnsClient
  readonly log: Log
}

/** How often a --cache-file is written while serving (and once at the end). */
const SAVE_EVERY_MS = 10_000

/** serve's flags → a setup; a bad value, a server word, or neither --listen nor --stdio is a UsageError. */
export function prepareServe(flags: ServeFlags, words: readonly string[]): ServeSetup {
  if (words.length > 0) throw new UsageError(`serve takes no server words: ${quote(words[0])} (the list is each recipient domain's MX records)`)
  for (const name of ['recipient', 'server-address'] as const) if (flags[name] !== undefined) throw new UsageError(`--${name} goes with --query`)
  const stdio = flags.stdio ?? false
  if (!flags.listen?.length && !stdio) throw new UsageError('serve needs --listen inet:HOST:PORT or unix:PATH, or --stdio')
  const listen = (flags.listen ?? []).map((text) => parseListen(text))
  const metrics = flags.metrics === undefined ? undefined : parseListen(flags.metrics)
  if (metrics?.kind === 'unix') throw new UsageError(`bad --metrics "${flags.metrics}": expected inet:HOST:PORT`)
  const {stops, ...probe} = probeOptions(flags)
  const settings = {...probe, sequential: false}
  const ttls = ttlsOf(flags, SERVE_POSITIVE_TTL)
  const verbose = flags.verbose ?? false
  // spawn(8) connects stderr to the client as well: a log line there would be read as a
  // reply, so the lines go to Postfix's log through postlog(1) (or nowhere without it).
  const quiet = stdio && sameFile(2, [0, 1])
  const log = createLog({journal: !quiet && stderrIsJournal(), verbose, ...(quiet ? {write: postlogWriter()} : {})})
  const file = flagText(flags, 'cache-file')
  const {client, resolver, resolveMx, dnsServer} = dnsOf(flags, true)
  return {
    listen,
    stdio,
    metrics: metrics as (Listen & {kind: 'inet'}) | undefined,
    settings,
    stops: stops ?? [],
    maxConnections: flags['max-connections'] === undefined ? undefined : parseInteger('max-connections', flags['max-connections'], 1, 1_000_000),
    socketMode: flags['socket-mode'] === undefined ? undefined : parseSocketMode(flags['socket-mode']),
    cache: flags.cache === false ? false : {file},
    verbose,
    ttls,
    deps: {resolver, resolveMx, attempt: attemptSmtp, now: monotonicMs},
    dns: dnsServer === undefined ? 'system' : hostPort(dnsServer.address, dnsServer.port),
    dnsClient: client,
    log,
  }
}

/** The outcome cache, made at start and again on SIGHUP, and what the log says of it. */
function openCache(setup: ServeSetup): {cache?: OutcomeCache; fields: Fields} {
  const {log, ttls, settings} = setup
  if (setup.cache === false) return {fields: {cache: 'off', cache_note: '--no-cache'}}
  if (ttls.negative === 0 && ttls.positive === 0) return {fields: {cache: 'off', cache_note: 'both TTLs are 0'}}
  const path = setup.cache.file
  if (path === undefined) return {cache: new MemoryCache(ttls, Date.now, settings.timeoutMs), fields: {cache: 'memory'}}
  const said: string[] = []
  let starting = true
  const say = (message: string) => {
    if (starting) return void said.push(message)
    if (message.startsWith('off: ')) log.at('warning', {event: 'cache', cache_file: path, msg: `not used: ${message.slice(5)}; outcomes are kept in memory only`})
    else log.at('debug', {event: 'cache', msg: message})
  }
  const cache = new FileCache(path, ttls, {budgetMs: settings.timeoutMs, say})
  cache.load()
  starting = false
  // load() has judged the directory (one not there yet is made at the first write).
  const why = said.find((m) => m.startsWith('off: '))?.slice(5)
  if (why !== undefined) {
    log.at('warning', {event: 'cache', cache_file: path, msg: `not used: ${why}; outcomes are kept in memory only`})
    return {cache, fields: {cache: 'memory', cache_file: path, cache_note: `file not used: ${why}`}}
  }
  return {cache, fields: {cache: 'file', cache_file: path, cache_note: said.join('; ') || undefined}}
}

/** What answers requests: a checker with its caches; made anew on SIGHUP (all forgotten). */
interface Engine {
  /** decide(), and recall() of the decisions it may reuse. */
  readonly decide: Decide & {recall: Recall}
  readonly cache?: OutcomeCache
  readonly cacheFields: Fields
  /** Stop its background probes. */
  close(): void
}

function startEngine(setup: ServeSetup, stats: Stats): Engine {
  const {cache, fields} = openCache(setup)
  const controller = new AbortController()
  const revalidate = cache !== undefined && setup.ttls.positive > 0 ? {afterMs: REVALIDATE_AFTER_MS, budgetMs: setup.settings.timeoutMs, signal: controller.signal, onProbe: () => void stats.revalidations++} : undefined
  const deps = longLived({...setup.deps, attempt: stats.counting(setup.deps.attempt), cache}, {...SERVE_DNS_CACHE, now: monotonicMs}, revalidate)
  const checker = createChecker(setup.settings, deps)
  const trace = setup.verbose ? traceTo(setup.log) : undefined
  const decide = decideWith(checker, trace, cache === undefined ? undefined : setup.ttls, setup.stops)
  return {decide, cache, cacheFields: fields, close: () => controller.abort()}
}

/** --verbose: each line of a request's trace, tagged with the request's number and domain. */
function traceTo(log: Log): Trace {
  return (request, domain, text) => {
    for (const line of text.split('\n')) log.at('debug', {event: 'trace', request, domain, msg: line})
  }
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

/** Where a request's --verbose trace goes: its number, its domain, the text (lines). */
export type Trace = (request: number, domain: string, text: string) => void

/**
 * The server's decide(): the checker on the recipient domain's MX list; the local host's
 * identities are the request's server_address and every serve --stop (`stops`); requests
 * for the same domain and server_address share one decision while it runs and reuse it
 * briefly (reuseMs); `trace` gets the trace of the requests that ran the check (--verbose).
 */
export function decideWith(checker: Checker, trace?: Trace, ttls?: Ttls, stops: readonly StopGiven[] = []): Decide & {recall: Recall} {
  const share = sharing<Decision>({now: monotonicMs, reuseMs: (decision) => reuseMs(decision, ttls), maxEntries: 10_000})
  const key = (query: Query) => `${query.domain} ${query.serverAddress ?? ''}`
  const decide: Decide = async (query, signal, request = 0) => {
    const identities = query.serverAddress === undefined ? stops : [{address: query.serverAddress}, ...stops]
    const work = async (shared: AbortSignal) => {
      const checked = await checker.check({
        list: {mx: query.domain},
        stops: identities,
        signal: shared,
        onEvent: trace && ((event) => trace(request, query.domain, formatEvent(event))),
        onMxEvent: trace && ((event) => trace(request, query.domain, formatMxEvent(event))),
      })
      return decisionOf(checked)
    }
    const {result, shared} = await share(key(query), work, signal)
    return shared ? {...result, cached: true} : result
  }
  return Object.assign(decide, {recall: (query: Query) => share.recall(key(query))})
}

/**
 * Every --stop name is resolved once at start, so that a name that does not resolve is a
 * start-up error (exit 2), as for the command; each request resolves it again through the
 * DNS cache (at most 30 s old), so a changed address is followed. Returns the identities
 * in use as the start-up line says them.
 */
async function checkStops(setup: ServeSetup): Promise<string> {
  const signal = AbortSignal.timeout(setup.settings.timeoutMs || 10_000)
  const described = await Promise.all(setup.stops.map(async (stop) => {
    if ('address' in stop) return `--stop ${stop.address}`
    const lookup = await setup.deps.resolver(stop.name, signal)
    if (lookup.outcome !== 'resolved') throw stopUnresolved(stop.name, lookup)
    return `--stop ${stop.name} (${lookup.addresses.join(' ')})`
  }))
  return ['server_address', ...described].join(', ')
}

/** What serves: a policy server on its endpoints, or the one stdio connection. */
interface Serving {
  readonly endpoints: readonly string[]
  readonly connections: () => number
  readonly stats: () => ServerStats
  close(): Promise<void>
  /** Resolves when there is nothing more to serve (the stdio connection ended). */
  readonly ended: Promise<void>
}

/**
 * Listen (or take stdin/stdout), answer until SIGTERM/SIGINT (then close, in-flight
 * requests answered, exit 0) or the end of the stdio connection; SIGHUP reloads, SIGUSR1
 * logs the counters.
 */
export async function runServe(setup: ServeSetup): Promise<void> {
  const identities = await checkStops(setup)
  const {log} = setup
  const stats = new Stats(monotonicMs)
  let engine = startEngine(setup, stats)
  const options: ServingOptions = {
    decide: (query, signal, request) => engine.decide(query, signal, request),
    recall: (query) => engine.decide.recall(query),
    timeoutMs: setup.settings.timeoutMs,
    maxConnections: setup.maxConnections,
    socketMode: setup.socketMode,
    log,
    onDecision: (record) => stats.decided(record),
  }
  const serving = setup.stdio ? serveStdio(options) : await listenOn(setup, options)
  // Evictions: connections closed because of --max-connections, the idle longest or the new one.
  const counts = () => {
    const {connections, evicted, refused} = serving.stats()
    return {connections, evictions: evicted + refused}
  }
  let metrics: MetricsServer | undefined
  try {
    const [where] = setup.metrics === undefined ? [] : await resolveListen([setup.metrics])
    metrics = where?.kind === 'inet' ? await startMetrics(where, () => stats.snapshot(counts())) : undefined
  } catch (error) {
    await serving.close()
    throw error
  }
  log.at('info', {
    event: 'start',
    listen: serving.endpoints.join(','),
    identities,
    ...engine.cacheFields,
    positive_ttl: setup.ttls.positive,
    negative_ttl: setup.ttls.negative,
    revalidate_after: engine.cache !== undefined && setup.ttls.positive > 0 ? REVALIDATE_AFTER_MS / 1000 : undefined,
    timeout: setup.settings.timeoutMs / 1000,
    port: setup.settings.port,
    dns: setup.dns,
    max_connections: setup.stdio ? undefined : setup.maxConnections ?? 1000,
    metrics: metrics?.endpoint,
  })
  const save = () => engine.cache?.save() ?? Promise.resolve()
  const saver = setup.cache !== false && setup.cache.file !== undefined ? setInterval(() => void save(), SAVE_EVERY_MS).unref() : undefined
  const statsLine = (event: string) => log.at('info', {event, ...statsFields(stats.snapshot(counts()))})
  const finish = async () => {
    clearInterval(saver)
    engine.close()
    await Promise.all([save(), metrics?.close(), setup.dnsClient.close()])
  }
  onSignals(serving, log, finish, {
    SIGUSR1: () => statsLine('stats'),
    SIGHUP: () => {
      stats.reloads++
      const old = engine
      engine = startEngine(setup, stats)
      old.close()
      log.at('info', {event: 'reload', msg: 'remembered decisions, DNS answers and probe outcomes forgotten; cache file read again', ...engine.cacheFields})
      statsLine('stats')
    },
  })
  void serving.ended.then(async () => {
    await finish()
    log.at('info', {event: 'closed'})
    log.flush()
    process.exit(0)
  })
}

type ServingOptions = Omit<Parameters<typeof startPolicyServer>[0], 'listen'>

async function listenOn(setup: ServeSetup, options: ServingOptions): Promise<Serving> {
  const server = await startPolicyServer({...options, listen: await resolveListen(setup.listen)})
  return {...server, ended: new Promise(() => {})}
}

/** `--stdio`: one connection on standard input and output. */
function serveStdio(options: ServingOptions): Serving {
  const {closed, server} = serveStream(options, stdioStream())
  return {...server, endpoints: ['stdio'], ended: closed}
}

/**
 * SIGTERM and SIGINT stop the server gracefully: stop accepting, close idle connections,
 * answer what is in flight (each within --timeout), exit 0; a second one exits 0 at once.
 * `handlers` (SIGHUP, SIGUSR1) keep it serving. The other signals keep bin/run.js's rule
 * (exit 2 at once).
 */
function onSignals(server: Serving, log: Log, finish: () => Promise<void>, handlers: Partial<Record<NodeJS.Signals, () => void>>): void {
  let stopping = false
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return void (log.flush(), process.exit(0))
    stopping = true
    log.at('info', {event: 'stopping', signal, connections: server.connections()})
    void server
      .close()
      .then(finish)
      .then(() => {
        log.at('info', {event: 'closed'})
        log.flush()
        process.exit(0)
      })
  }
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.removeAllListeners(signal)
    process.on(signal, stop)
  }
  for (const [signal, handler] of Object.entries(handlers)) {
    process.removeAllListeners(signal)
    process.on(signal, () => {
      if (!stopping) handler()
    })
  }
}
