// The thin oclif command: flags -> core -> output. All decisions live in src/core.
import {Command, Errors, Flags} from '@oclif/core'

import {attemptSmtp} from '../core/attempt.js'
import {DEFAULT_NEGATIVE_TTL, DEFAULT_POSITIVE_TTL, type OutcomeCache} from '../core/cache.js'
import {defaultCachePath, FileCache} from '../core/cache-file.js'
import {check, type CheckOptions} from '../core/check.js'
import {FatalError, UsageError} from '../core/errors.js'
import {MAX_TIMER_SECONDS, parseDnsServer, parseInteger, parseSeconds, parseServerList, parseStop} from '../core/grammar.js'
import {lookupMx, mxResolver, parseMxDomain, type MxResult} from '../core/mx.js'
import {DEFAULT_ATTEMPT_DELAY_MS} from '../core/race.js'
import {formatEvent, formatMxEvent, toJson} from '../core/report.js'
import {dnsServerResolver, systemResolver} from '../core/resolve.js'

const USAGE = 'usage: smtpdcheck [--stop {ip-addr|name}] [--timeout seconds] [options] [prio:]server ...'
const DEFAULT_TIMEOUT_S = 10
const DEFAULT_PORT = 25

/** oclif's parse errors in our words: [pattern on its message, our message]. */
const PARSE_ERRORS: Array<[RegExp, (m: RegExpMatchArray) => string]> = [
  [/^Nonexistent flags?: ([^,\n]+)/, (m) => `unknown option "${m[1]}" (see smtpdcheck --help)`],
  [/^Flag (--\S+) expects/, (m) => `option "${m[1]}" needs a value`],
  [/^Flag (--\S+) can only be specified once/, (m) => `option "${m[1]}" given more than once`],
  [/--([\w-]+)(?:=\S*)? cannot also be provided when using --([\w-]+)/, (m) => `options ${spell(m[2])} and ${spell(m[1])} cannot be used together`],
]

/** `-4 (--ipv4)` or `--stop`: a flag as the user may have typed it. */
function spell(name: string): string {
  const char = (Check.flags as Record<string, {char?: string}>)[name]?.char
  return char ? `"-${char}" (--${name})` : `"--${name}"`
}

/**
 * What oclif's parser would get wrong, checked before it runs: `-host-` is not `-h` (help)
 * plus more, and `--json=1` is not `--json` followed by a server word `1`.
 */
function precheck(words: readonly string[]): void {
  const flags = Check.flags as Record<string, {type: string; char?: string; allowNo?: boolean}>
  const chars = new Set(Object.values(flags).flatMap((flag) => (flag.char ? [flag.char] : [])))
  for (let i = 0; i < words.length; i++) {
    const word = words[i]
    if (word === '--') return
    if (word.startsWith('--')) {
      const [name, ...value] = word.slice(2).split('=')
      const flag = flags[name] ?? (name.startsWith('no-') && flags[name.slice(3)]?.allowNo ? flags[name.slice(3)] : undefined)
      if (flag?.type === 'boolean' && value.length > 0) throw new UsageError(`option "--${name}" takes no value: "${word}"`)
      if (flag?.type === 'option' && value.length === 0) i++
    } else if (word.length > 2 && chars.has(word[1]) && ![...word.slice(1)].every((c) => chars.has(c))) {
      throw new UsageError(`unknown option "${word}" (see smtpdcheck --help)`)
    }
  }
}

/** Print one line on stderr and exit 2 (SPEC §6): never a stack trace. */
export function fail(message: string): never {
  process.stderr.write(`smtpdcheck: ${message}\n`)
  process.exit(2)
}

export default class Check extends Command {
  static override summary = 'Is a more preferred MX of this domain up right now?'
  static override description = `Probes the SMTP servers that are more preferred than the local host (--stop) and prints the first one that greets with 220.
Exit status: 1 and the server's name on stdout when one is available; 0 when none is; 2 on a usage error, a --stop lookup failure or a system error.`
  static override usage = ['[--stop {ip-addr|name}] [--timeout seconds] [options] [prio:]server ...', '[--stop {ip-addr|name}] [--timeout seconds] [options] --mx DOMAIN']
  static override examples = [
    {description: 'Always exits 0: the local host s2 has the same priority as s1.', command: 'smtpdcheck --stop s2.domain.com 10:s1.domain.com 10:s2.domain.com 20:s3.domain.com'},
    {description: 'Prints s1.domain.com and exits 1 if s1.domain.com is up.', command: 'smtpdcheck --stop s2.domain.com 10:s1.domain.com 20:s2.domain.com 30:s3.domain.com'},
    {description: 'Mail Avenger, /etc/avenger/secondary:', command: 'server=`smtpdcheck --stop $MYIP $RECIP_MXES`; test -n "$server" && defer "Please use server $server"'},
    {description: 'Shell completion (only a first word exactly "autocomplete" is this subcommand):', command: 'smtpdcheck autocomplete bash'},
  ]
  static override strict = false
  static override flags = {
    stop: Flags.string({summary: 'The local host (IP address or name): it and the servers it is as good as are not probed.', helpValue: 'ip-addr|name'}),
    timeout: Flags.string({summary: `Budget per server in seconds, lookup included; 0 = no limit. [default: ${DEFAULT_TIMEOUT_S}]`, helpValue: 'seconds'}),
    port: Flags.string({summary: `TCP port to probe. [default: ${DEFAULT_PORT}]`, helpValue: 'N'}),
    'attempt-delay': Flags.string({summary: `Milliseconds before the next address of a host is tried while earlier attempts go on. [default: ${DEFAULT_ATTEMPT_DELAY_MS}]`, helpValue: 'MS'}),
    mx: Flags.string({summary: "Look DOMAIN's MX records up and use them as the server list (RFC 5321 §5.1, RFC 7505).", helpValue: 'DOMAIN'}),
    'dns-server': Flags.string({summary: 'Send A and AAAA queries straight to this DNS server instead of the system resolver.', helpValue: 'ADDR[:PORT]'}),
    ipv4: Flags.boolean({char: '4' as 'a', summary: 'Probe IPv4 addresses only.', exclusive: ['ipv6']}),
    ipv6: Flags.boolean({char: '6' as 'a', summary: 'Probe IPv6 addresses only.', exclusive: ['ipv4']}),
    sequential: Flags.boolean({summary: 'Probe one server at a time in list order, as the original did.'}),
    'negative-ttl': Flags.string({summary: `Seconds an unavailable address is skipped. [default: ${DEFAULT_NEGATIVE_TTL}]`, helpValue: 'seconds'}),
    'positive-ttl': Flags.string({summary: `Seconds an available address is believed without probing. [default: ${DEFAULT_POSITIVE_TTL}]`, helpValue: 'seconds'}),
    'cache-file': Flags.string({summary: 'Cache file [default: $XDG_CACHE_HOME/smtpdcheck/cache.json].', helpValue: 'PATH'}),
    cache: Flags.boolean({summary: 'Remember outcomes between runs (--no-cache turns it off).', allowNo: true, default: true}),
    verbose: Flags.boolean({char: 'v', summary: 'Trace every step on stderr.'}),
    json: Flags.boolean({summary: 'Describe the run as one JSON document on stdout.'}),
    help: Flags.help({char: 'h'}),
    version: Flags.version(),
  }

  override async run(): Promise<void> {
    if (this.argv.length === 0) {
      process.stderr.write(`${USAGE}\n`)
      process.exit(2)
    }
    precheck(this.argv)
    const {flags, argv, nonExistentFlags} = await this.parse(Check)
    if (nonExistentFlags?.length) throw new UsageError(`unknown option "${nonExistentFlags[0]}" (see smtpdcheck --help)`)
    // --mx DOMAIN (issue 11): parsed with the other values, looked up before check() below.
    const mxDomain = flags.mx === undefined ? undefined : parseMxDomain(flags.mx)
    if (mxDomain !== undefined && argv.length > 0) throw new UsageError(`--mx and server words cannot be used together (one or the other gives the list)`)
    let options: CheckOptions = {
      entries: parseServerList(argv as string[]),
      stop: flags.stop === undefined ? undefined : parseStop(flags.stop),
      timeoutMs: 1000 * (flags.timeout === undefined ? DEFAULT_TIMEOUT_S : parseSeconds('timeout', flags.timeout, MAX_TIMER_SECONDS)),
      port: flags.port === undefined ? DEFAULT_PORT : parseInteger('port', flags.port, 1, 65_535),
      attemptDelayMs: flags['attempt-delay'] === undefined ? DEFAULT_ATTEMPT_DELAY_MS : parseInteger('attempt-delay', flags['attempt-delay'], 0, 60_000),
      family: flags.ipv4 ? 4 : flags.ipv6 ? 6 : undefined,
      sequential: flags.sequential,
    }
    const resolver = flags['dns-server'] === undefined ? systemResolver : dnsServerResolver(parseDnsServer(flags['dns-server']))
    const ttls = {
      negative: flags['negative-ttl'] === undefined ? DEFAULT_NEGATIVE_TTL : parseSeconds('negative-ttl', flags['negative-ttl']),
      positive: flags['positive-ttl'] === undefined ? DEFAULT_POSITIVE_TTL : parseSeconds('positive-ttl', flags['positive-ttl']),
    }
    const say = flags.verbose ? (message: string) => process.stderr.write(`cache: ${message}\n`) : undefined
    if (flags['cache-file'] === '') throw new UsageError('--cache-file must not be empty')
    const cachePath = flags.cache ? flags['cache-file'] ?? defaultCachePath() : undefined
    if (flags.cache && cachePath === undefined) say?.('off: neither $XDG_CACHE_HOME nor a home directory is set')
    const cache: OutcomeCache | undefined = cachePath === undefined ? undefined : new FileCache(cachePath, ttls, {budgetMs: options.timeoutMs, say})

    const interrupt = new AbortController()
    const onSignal = () => {
      interrupt.abort('cancelled')
      process.exit(2)
    }
    process.once('SIGINT', onSignal)
    process.once('SIGTERM', onSignal)

    // --mx DOMAIN: the MX lookup has its own budget, before the servers' budgets start.
    let mx: MxResult | undefined
    if (mxDomain !== undefined) {
      const server = flags['dns-server'] === undefined ? undefined : parseDnsServer(flags['dns-server'])
      mx = await lookupMx(mxDomain, {
        resolveMx: mxResolver(server),
        timeoutMs: options.timeoutMs,
        now: () => Number(process.hrtime.bigint()) / 1e6,
        signal: interrupt.signal,
        onEvent: flags.verbose ? (event) => process.stderr.write(`${formatMxEvent(event)}\n`) : undefined,
      })
      options = {...options, entries: mx.entries}
    }

    const report = await check(options, {
      resolver,
      attempt: attemptSmtp,
      // Monotonic ms; not performance.now(), whose first use loads perf_hooks (~1.5 ms a run).
      now: () => Number(process.hrtime.bigint()) / 1e6,
      cache,
      signal: interrupt.signal,
      onEvent: flags.verbose ? (event) => process.stderr.write(`${formatEvent(event)}\n`) : undefined,
    })
    if (flags.json) process.stdout.write(`${JSON.stringify(toJson(report, mx), null, 2)}\n`)
    else if (report.winner) process.stdout.write(`${report.winner.name}\n`)
    await cache?.save()
    process.exit(report.exitCode)
  }

  override async catch(error: Error & {exitCode?: number}): Promise<never> {
    if (error instanceof Errors.ExitError) throw error
    if (error instanceof UsageError || error instanceof FatalError) fail(error.message)
    // oclif's own parse errors (unknown flag, missing value, exclusive flags, ...).
    if (error instanceof Errors.CLIError) {
      for (const [pattern, say] of PARSE_ERRORS) {
        const match = error.message.match(pattern)
        if (match) fail(say(match))
      }
      fail(error.message.split('\n')[0].replace(/^Error: /, ''))
    }
    fail(`system error: ${String(error.message ?? error).split('\n')[0]}`)
  }
}
