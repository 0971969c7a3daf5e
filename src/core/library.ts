// The library (issue 22): what a Node program calls instead of the command line or the
// policy socket. check() is one run of the command (server words or an MX domain → the
// server to use, or none, and the --json report); createChecker() is what `serve` runs on:
// built once, one in-memory cache, probes shared in flight, DNS answers held for their TTL,
// a signal per question, close(). Options are the command's, in its units, checked by its
// rules (./options.ts). No module state; nothing written anywhere; nothing left running
// once a question is answered (one-shot) or the checker is closed.
import {attemptSmtp} from './attempt.js'
import {DEFAULT_POSITIVE_TTL, MemoryCache, type OutcomeCache, type Ttls} from './cache.js'
import {FileCache} from './cache-file.js'
import {createChecker as coreChecker, longLived, type Checked, type Checker as CoreChecker, type CheckerSettings, type Request} from './checker.js'
import {SERVE_DNS_CACHE} from './dns-cache.js'
import {FatalError, UsageError} from './errors.js'
import {canonicalName, hostPort, parseServerList, parseStop, type StopGiven} from './grammar.js'
import {parseMxDomain} from './mx.js'
import {dnsFrom, probeSettings, SERVE_POSITIVE_TTL, ttlsFrom} from './options.js'
import {formatEvent, formatMxEvent, formatSettings, reasonOf, toJson, type Settings} from './report.js'

/** How every server is probed: the command's options of the same names (SPEC §2, §7). */
export interface ProbeOptions {
  /** Seconds for each server: its lookup, its connections and its greeting (`--timeout`); 0 = no limit. Default 10. */
  readonly timeout?: number
  /** TCP port to probe (`--port`). Default 25. */
  readonly port?: number
  /** Milliseconds before the next address of a host is tried (`--attempt-delay`). Default 250. */
  readonly attemptDelay?: number
  /** Probe only IPv4 (4) or only IPv6 (6) addresses (`-4`, `-6`). */
  readonly family?: 4 | 6
  /** Ask this DNS server, `ADDR[:PORT]`, instead of the system resolver (`--dns-server`). */
  readonly dnsServer?: string
}

/** The outcome cache (SPEC §5): how long an address found down (negative) or up (positive) is believed, in seconds. */
export interface CacheOptions {
  /** Default 60. */
  readonly negativeTtl?: number
  /** Default 0 for check(), 30 for a checker (serve's). */
  readonly positiveTtl?: number
}

/** One question: a list of servers, or a domain whose MX records are the list. */
export interface Question {
  /** Server words as on the command line: `10:mx1.example.org`, `mx2.example.org`, `[2001:db8::1]`. */
  readonly servers?: readonly string[]
  /** A domain whose MX records are the list (`--mx`); Unicode is converted to punycode. */
  readonly mx?: string
  /** The local host's identities: its addresses and names (`--stop`, repeatable). */
  readonly identities?: readonly string[]
  /** Aborting it ends the question: every socket is closed and the promise rejects with the signal's reason. */
  readonly signal?: AbortSignal
  /** Each `--verbose` line, without a newline. */
  readonly onTrace?: (line: string) => void
}

/** A one-shot check: a question and the command's options. */
export interface CheckOptions extends ProbeOptions, Question {
  /** One server at a time in list order, as the original did (`--sequential`). */
  readonly sequential?: boolean
  /** Remember outcomes in this file between runs (`--cache-file`). Default: no cache. */
  readonly cacheFile?: string
  readonly cache?: CacheOptions
}

/** A long-lived checker's options. */
export interface CheckerOptions extends ProbeOptions {
  /** Identities of the local host added to every question's (serve's `--stop`: public names behind NAT). */
  readonly identities?: readonly string[]
  /** The in-memory outcome cache; false: none (probes in flight are still shared). */
  readonly cache?: CacheOptions | false
}

/** The document `smtpdcheck --json` prints (docs/report.schema.json). */
export type Report = ReturnType<typeof toJson>

export interface Verdict {
  /** The more preferred server that is up, as listed (without `prio:`): defer to it. null: accept. */
  readonly server: string | null
  /**
   * Why, in words: `available`, `no more preferred MX`, `no more preferred MX is up (N tried)`,
   * `null MX`, `no such domain`, `local host not among the MX (no identity of this host is listed)`.
   */
  readonly reason: string
  /** What the command would exit with: 1 when a server is named, else 0. */
  readonly exitCode: 0 | 1
  readonly report: Report
}

export interface Checker {
  /** Answer one question; concurrent questions share probes, DNS answers and the cache. */
  check(question: Question): Promise<Verdict>
  /** End every question in flight (they reject), release every socket and timer; later questions reject. */
  close(): Promise<void>
}

/** Monotonic milliseconds. */
const now = () => performance.now()

/** The local host's identities → the check's stops, each checked by `--stop`'s rule; one identity written two ways counts once. */
function stopsOf(identities: unknown): StopGiven[] {
  if (!Array.isArray(identities) || identities.some((identity) => typeof identity !== 'string')) {
    throw new UsageError('identities must be an array of addresses or host names (strings)')
  }
  const parsed = identities.map((text: string) => parseStop(text))
  return [...new Map(parsed.map((stop) => ['address' in stop ? stop.address : canonicalName(stop.name), stop])).values()]
}

/** The question's list: its server words or its MX domain (one of them), checked before anything is asked. */
function listOf(question: Question): Request['list'] {
  const {servers, mx} = question
  if ((servers === undefined) === (mx === undefined)) throw new UsageError('a question has either servers or mx (one of them)')
  if (mx !== undefined) return {mx: parseMxDomain(String(mx))}
  if (!Array.isArray(servers) || servers.some((word) => typeof word !== 'string')) throw new UsageError('servers must be an array of server words (strings)')
  return {entries: parseServerList(servers)}
}

/** What asks DNS: one client (the system's servers, /etc/hosts first, or `dnsServer`) for A/AAAA and MX. */
type Dns = ReturnType<typeof dnsFrom>

/** The settings a report names (--json `options`). */
function settingsOf(settings: CheckerSettings, dns: Dns, cache: string | null, ttls: Ttls): Settings {
  return {
    port: settings.port,
    timeout: settings.timeoutMs / 1000,
    family: settings.family ?? null,
    resolver: dns.dnsServer === undefined ? 'system' : hostPort(dns.dnsServer.address, dns.dnsServer.port),
    attemptDelayMs: settings.attemptDelayMs,
    sequential: settings.sequential,
    cache,
    ttls,
  }
}

/** One question to a core checker → its verdict; an aborted question rejects with its signal's reason. */
async function ask(checker: CoreChecker, question: Question, identities: readonly string[], settings: Settings, signal?: AbortSignal): Promise<Verdict> {
  const list = listOf(question)
  const own = question.identities ?? []
  const stops = stopsOf(Array.isArray(own) ? [...own, ...identities] : own)
  const trace = question.onTrace
  signal?.throwIfAborted()
  trace?.(formatSettings(settings))
  let checked: Checked
  try {
    checked = await checker.check({
      list,
      stops,
      signal,
      onEvent: trace && ((event) => trace(formatEvent(event))),
      onMxEvent: trace && ((event) => formatMxEvent(event).split('\n').forEach((line) => trace(line))),
    })
  } catch (error) {
    signal?.throwIfAborted() // an MX lookup cut short by the signal: the signal's reason, not a DNS failure
    throw error
  }
  signal?.throwIfAborted()
  const {report, mx} = checked
  return {server: report.winner?.name ?? null, reason: reasonOf(report, mx).reason, exitCode: report.exitCode, report: toJson(report, mx, settings)}
}

/**
 * One run of the command: `smtpdcheck [--stop …] [options] words…` or `--mx DOMAIN`. Rejects
 * with a UsageError for a bad question or option (nothing probed), a FatalError for a
 * `--stop` or MX lookup failure or a system error, or the signal's reason when aborted.
 */
export async function check(options: CheckOptions): Promise<Verdict> {
  const settings: CheckerSettings = {...probeSettings(options), sequential: Boolean(options.sequential)}
  const ttls = ttlsFrom(options.cache ?? {}, DEFAULT_POSITIVE_TTL)
  const file = options.cacheFile
  if (file !== undefined && (typeof file !== 'string' || file === '')) throw new UsageError('cacheFile must be a non-empty path')
  const say = options.onTrace && ((message: string) => options.onTrace!(`cache: ${message}`))
  const cache = file === undefined ? undefined : new FileCache(file, ttls, {budgetMs: settings.timeoutMs, say})
  const dns = dnsFrom(options.dnsServer === undefined ? undefined : String(options.dnsServer))
  try {
    const checker = coreChecker(settings, {resolver: dns.resolver, resolveMx: dns.resolveMx, attempt: attemptSmtp, now, cache})
    const verdict = await ask(checker, options, [], settingsOf(settings, dns, file ?? null, ttls), options.signal)
    await cache?.save()
    return verdict
  } finally {
    await dns.client.close()
  }
}

/**
 * A long-lived checker, what `serve` runs on: one in-memory cache, probes shared in flight,
 * DNS answers held for their TTL (at most 30 s). Options are checked at once (UsageError).
 * Each question answers as check() does; close() ends it all.
 */
export function createChecker(options: CheckerOptions = {}): Checker {
  const settings: CheckerSettings = {...probeSettings(options), sequential: false}
  const identities = options.identities ?? []
  stopsOf(identities) // checked now, not at the first question
  const ttls = ttlsFrom(options.cache || {}, SERVE_POSITIVE_TTL)
  const cache: OutcomeCache | undefined = options.cache === false ? undefined : new MemoryCache(ttls, Date.now, settings.timeoutMs)
  const dns = dnsFrom(options.dnsServer === undefined ? undefined : String(options.dnsServer), true)
  const deps = longLived({resolver: dns.resolver, resolveMx: dns.resolveMx, attempt: attemptSmtp, now, cache}, {...SERVE_DNS_CACHE, now})
  const checker = coreChecker(settings, deps)
  const shown = settingsOf(settings, dns, cache === undefined ? null : 'memory', ttls)
  const closing = new AbortController()
  const inFlight = new Set<Promise<unknown>>()
  let closed: Promise<void> | undefined
  return {
    check(question) {
      if (closed) return Promise.reject(new FatalError('the checker is closed'))
      const signal = question.signal === undefined ? closing.signal : AbortSignal.any([question.signal, closing.signal])
      const answer = ask(checker, question, identities, shown, signal)
      const settled: Promise<unknown> = answer.then(
        () => inFlight.delete(settled),
        () => inFlight.delete(settled),
      )
      inFlight.add(settled)
      return answer
    },
    close() {
      closed ??= (async () => {
        closing.abort(new FatalError('the checker is closed'))
        await Promise.all(inFlight)
        await dns.client.close()
      })()
      return closed
    },
  }
}
