// From parsed flags to a finished run, shared by the fast entry (./main.ts) and the oclif
// command: prepare() is the one place where flags become CheckOptions and the rest of a run;
// runCheck() probes, writes the answer and exits with 0, 1 or 2 (SPEC §6).
import {attemptSmtp} from '../core/attempt.js'
import {DEFAULT_POSITIVE_TTL, type OutcomeCache, type Ttls} from '../core/cache.js'
import {defaultCachePath, FileCache} from '../core/cache-file.js'
import type {CheckOptions} from '../core/check.js'
import {createChecker} from '../core/checker.js'
import {escapeControls, FatalError, quote, UsageError, type FailureKind} from '../core/errors.js'
import {hostPort, parseServerList, parseStop, type Entry} from '../core/grammar.js'
import {parseMxDomain, type ResolveMx} from '../core/mx.js'
import {dnsFrom, probeSettings, ttlsFrom} from '../core/options.js'
import {formatEvent, formatMxEvent, formatSettings, stamp, toJson, type Settings} from '../core/report.js'
import type {Resolver} from '../core/resolve.js'
import type {ParsedFlags} from './flags.js'
import {recipe} from './recipe.js'

const USAGE = 'usage: smtpdcheck [--stop {ip-addr|name}] [--timeout seconds] [options] [prio:]server ...'

/** Run with no arguments at all: the usage on stderr, exit 2 (SPEC §2). */
export function usage(): never {
  process.stderr.write(`${USAGE}\n`)
  process.exit(2)
}

/** The default command's parsed line → its run: `--print-recipe NAME`, or a check (exit 0, 1 or 2). */
export async function runCommand(flags: ParsedFlags, words: readonly string[]): Promise<never> {
  const name = flags['print-recipe']
  if (name === undefined) return runCheck(prepare(flags, words))
  const others = [...Object.keys(flags).filter((flag) => flag !== 'print-recipe').map((flag) => `--${flag}`), ...words]
  if (others.length > 0) throw new UsageError(`--print-recipe takes nothing else: ${quote(others[0])}`)
  await writeOut(recipe(name))
  process.exit(0)
}

/**
 * `smtpdcheck help` or `smtpdcheck version` (one word, no priority, no --mx): a host name that
 * did not resolve is almost surely a forgotten `--`; the run says so instead of exiting 0.
 */
function lonelyOptionWord(run: Prepared, report: {lookups: ReadonlyMap<Entry, {outcome: string}>}): string | undefined {
  const [entry, ...more] = run.options.entries
  if (run.mx !== undefined || more.length > 0 || entry?.prio !== undefined || !/^(help|version)$/.test(entry?.name ?? '')) return undefined
  const outcome = report.lookups.get(entry)?.outcome
  return outcome === 'nxdomain' || outcome === 'no-address' ? entry.name : undefined
}

/** Everything a run needs, decided from the command line before anything is probed. */
export interface Prepared {
  readonly options: CheckOptions
  readonly resolver: Resolver
  /** The MX lookup of `--mx`, through the same DNS client as `resolver`. */
  readonly resolveMx: ResolveMx
  readonly cache?: OutcomeCache
  readonly verbose: boolean
  readonly json: boolean
  /** `--mx DOMAIN` (ASCII): the list is DOMAIN's MX records, looked up before the probes. */
  readonly mx?: string
  /** The run's start on monotonicMs' clock: every --verbose line counts from it. */
  readonly startMs: number
  /** The settings in force (--json `options`, the --verbose header line). */
  readonly settings: Settings
  /** Why the cache is off when neither --no-cache nor a file says so (no cache directory). */
  readonly cacheOff?: string
}

/** Flags and server words → a run; a bad word or value is a UsageError (nothing probed). */
export function prepare(flags: ParsedFlags, words: readonly string[], startMs = monotonicMs()): Prepared {
  const mx = flags.mx === undefined ? undefined : parseMxDomain(flags.mx)
  if (mx !== undefined && words.length > 0) throw new UsageError('--mx and server words cannot be used together (one or the other gives the list)')
  const options: CheckOptions = {...probeOptions(flags), entries: parseServerList(words), sequential: flags.sequential ?? false}
  const {resolver, resolveMx, dnsServer} = dnsOf(flags)
  const verbose = flags.verbose ?? false
  const say = verbose ? (message: string) => warn(`${stamp(monotonicMs() - startMs)}cache: ${message}`) : undefined
  const useCache = flags.cache ?? true
  const cachePath = useCache ? flagText(flags, 'cache-file') ?? defaultCachePath() : undefined
  const cacheOff = useCache && cachePath === undefined ? 'neither $XDG_CACHE_HOME nor a home directory is set' : undefined
  const ttls = ttlsOf(flags, DEFAULT_POSITIVE_TTL)
  const cache = cachePath === undefined ? undefined : new FileCache(cachePath, ttls, {budgetMs: options.timeoutMs, say})
  const settings: Settings = {
    port: options.port,
    timeout: options.timeoutMs / 1000,
    family: options.family ?? null,
    resolver: dnsServer === undefined ? 'system' : hostPort(dnsServer.address, dnsServer.port),
    attemptDelayMs: options.attemptDelayMs,
    sequential: options.sequential,
    cache: cachePath ?? null,
    ttls,
  }
  return {options, resolver, resolveMx, cache, verbose, json: flags.json ?? false, mx, startMs, settings, cacheOff}
}

/** The options shared by the command and serve (one rule per option; SPEC §2, §5, §7). */
type SharedFlags = Pick<ParsedFlags, 'stop' | 'timeout' | 'port' | 'attempt-delay' | 'ipv4' | 'ipv6' | 'dns-server' | 'negative-ttl' | 'positive-ttl' | 'cache-file'>

/** --stop, --timeout, --port, --attempt-delay, -4/-6 → the probe options. */
export function probeOptions(flags: SharedFlags): Omit<CheckOptions, 'entries' | 'sequential'> {
  return {
    stops: (flags.stop ?? []).map((text) => parseStop(text)),
    ...probeSettings({timeout: flags.timeout, port: flags.port, attemptDelay: flags['attempt-delay'], family: flags.ipv4 ? 4 : flags.ipv6 ? 6 : undefined}),
  }
}

/** --dns-server → the DNS client and its resolvers (core/options.ts); `longLived` for serve. */
export function dnsOf(flags: SharedFlags, longLived = false): ReturnType<typeof dnsFrom> {
  return dnsFrom(flags['dns-server'], longLived)
}

/** --negative-ttl, --positive-ttl (whose default differs: 0 for the command, 30 for serve). */
export function ttlsOf(flags: SharedFlags, positiveDefault: number): Ttls {
  return ttlsFrom({negativeTtl: flags['negative-ttl'], positiveTtl: flags['positive-ttl']}, positiveDefault)
}

/** --cache-file's value; an empty one is a usage error. */
export function flagText(flags: SharedFlags, name: 'cache-file'): string | undefined {
  if (flags[name] === '') throw new UsageError(`--${name} must not be empty`)
  return flags[name]
}

/** One diagnostic line on stderr (a closed stderr is ignored: bin/run.js). */
function warn(line: string): void {
  process.stderr.write(`${line}\n`)
}

/** Print one line `smtpdcheck: …` on stderr, control characters escaped, and exit 2 (SPEC §6). */
export function fail(message: string): never {
  warn(`smtpdcheck: ${escapeControls(message)}`)
  process.exit(2)
}

/** What kind of exit-2 failure an error is (--json's error object). */
export function failureKind(error: unknown): FailureKind {
  return error instanceof UsageError ? 'usage' : error instanceof FatalError ? error.kind : 'system'
}

/** `--json` before `--`: a failure is then also a JSON document on stdout (even when the line did not parse). */
export function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf('--')
  return (end < 0 ? argv : argv.slice(0, end)).includes('--json')
}

/**
 * End a run that failed (exit 2): the one line on stderr as always and, under --json, the
 * document `{"error": {"kind", "message"}}` on stdout first, so that a JSON reader gets one.
 */
export function failRun(error: unknown, argv: readonly string[]): never {
  const message = failure(error)
  if (wantsJson(argv)) process.stdout.write(`${JSON.stringify({error: {kind: failureKind(error), message: escapeControls(message)}}, null, 2)}\n`)
  fail(message)
}

/** The line for an error: ours as they are, anything else a system error (first line only). */
export function failure(error: unknown): string {
  if (error instanceof UsageError || error instanceof FatalError) return error.message
  const text = String((error as Error)?.message ?? error)
  return `system error: ${text.split('\n')[0]}`
}

/** Monotonic ms; not performance.now(), whose first use loads perf_hooks (~1.5 ms a run). */
export const monotonicMs = () => Number(process.hrtime.bigint()) / 1e6

/** Probe, write the answer (exit 1 only once it is written), save the cache, exit. Signals: bin/run.js. */
export async function runCheck(run: Prepared): Promise<never> {
  if (run.verbose) warn(formatSettings(run.settings, run.cacheOff))
  const {entries, stops, ...settings} = run.options
  const checker = createChecker(settings, {resolver: run.resolver, resolveMx: run.resolveMx, attempt: attemptSmtp, now: monotonicMs, cache: run.cache})
  const {report, mx} = await checker.check({
    list: run.mx === undefined ? {entries} : {mx: run.mx},
    stops,
    startMs: run.startMs,
    onEvent: run.verbose ? (event) => warn(formatEvent(event)) : undefined,
    onMxEvent: run.verbose ? (event) => warn(formatMxEvent(event)) : undefined,
  })
  const lonely = report.exitCode === 0 ? lonelyOptionWord(run, report) : undefined
  if (lonely !== undefined) throw new UsageError(`no host ${quote(lonely)} (did you mean --${lonely}?)`)
  const answer = run.json ? `${JSON.stringify(toJson(report, mx, run.settings), null, 2)}\n` : report.winner ? `${report.winner.name}\n` : ''
  if (answer !== '') await writeOut(answer)
  await run.cache?.save()
  process.exit(report.exitCode)
}

/**
 * Wait until what is already written to stdout is out (oclif's --help and --version print
 * with console.log, which drops write errors): text that could not be written — a full
 * disk, a closed pipe — is a system error, exit 2 with one line, as for an answer (SPEC §6).
 */
export function flushStdout(): Promise<void> {
  return new Promise((resolve) => {
    process.stdout.write('', (error) => {
      const cause = process.stdout.errored ?? error
      if (cause) fail(`system error: cannot write to standard output: ${cause.message}`)
      resolve()
    })
  })
}

/** Write to stdout and wait until it is out; an answer that cannot be written is a system error. */
function writeOut(text: string): Promise<void> {
  return new Promise((resolve) => {
    process.stdout.write(text, (error) => (error ? fail(`system error: cannot write the answer: ${error.message}`) : resolve()))
  })
}
