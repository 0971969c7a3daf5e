// The command's options, as plain data: one table read by the fast parser (./argv.ts) and by
// the oclif command (src/commands/check.ts: --help, completion). No oclif import here.
import {DEFAULT_NEGATIVE_TTL, DEFAULT_POSITIVE_TTL} from '../core/cache.js'
import {DEFAULT_PORT, DEFAULT_TIMEOUT_S, SERVE_POSITIVE_TTL} from '../core/options.js'
import {DEFAULT_ATTEMPT_DELAY_MS} from '../core/race.js'
import {RECIPES} from './recipe.js'

export {DEFAULT_PORT, DEFAULT_TIMEOUT_S, SERVE_POSITIVE_TTL} from '../core/options.js'

export interface FlagSpec {
  /** `value`: takes one value (`--stop X`, `--stop=X`); `boolean`: takes none. */
  readonly type: 'value' | 'boolean'
  readonly char?: string
  readonly summary: string
  readonly helpValue?: string
  /** `--no-NAME` turns it off (`--no-cache`). */
  readonly negatable?: boolean
  /** Cannot be given together with these. */
  readonly exclusive?: readonly string[]
  /** May be given more than once (`serve --listen A --listen B`): its values are a list. */
  readonly multiple?: boolean
  readonly required?: boolean
  /** The values it takes (shell completion offers them). */
  readonly choices?: readonly string[]
}

export const FLAGS = {
  stop: {type: 'value', multiple: true, summary: 'The local host (IP address or name; repeatable: each name or address it is known by, e.g. private and public behind NAT): it and the servers it is as good as are not probed.', helpValue: 'ip-addr|name'},
  timeout: {type: 'value', summary: `Budget per server in seconds, lookup included; 0 = no limit. [default: ${DEFAULT_TIMEOUT_S}]`, helpValue: 'seconds'},
  port: {type: 'value', summary: `TCP port to probe. [default: ${DEFAULT_PORT}]`, helpValue: 'N'},
  'attempt-delay': {type: 'value', summary: `Milliseconds before the next address of a host is tried while earlier attempts go on. [default: ${DEFAULT_ATTEMPT_DELAY_MS}]`, helpValue: 'MS'},
  mx: {type: 'value', summary: "Look DOMAIN's MX records up and use them as the server list (RFC 5321 §5.1, RFC 7505).", helpValue: 'DOMAIN'},
  'dns-server': {type: 'value', summary: 'Send A and AAAA queries straight to this DNS server instead of the system resolver.', helpValue: 'ADDR[:PORT]'},
  ipv4: {type: 'boolean', char: '4', summary: 'Probe IPv4 addresses only.', exclusive: ['ipv6']},
  ipv6: {type: 'boolean', char: '6', summary: 'Probe IPv6 addresses only.', exclusive: ['ipv4']},
  sequential: {type: 'boolean', summary: 'Probe one server at a time in list order, as the original did.'},
  'negative-ttl': {type: 'value', summary: `Seconds an unavailable address is skipped. [default: ${DEFAULT_NEGATIVE_TTL}]`, helpValue: 'seconds'},
  'positive-ttl': {type: 'value', summary: `Seconds an available address is believed without probing. [default: ${DEFAULT_POSITIVE_TTL}]`, helpValue: 'seconds'},
  'cache-file': {type: 'value', summary: 'Cache file. [default: $XDG_CACHE_HOME/smtpdcheck/cache.json, or ~/.cache/smtpdcheck/cache.json when $XDG_CACHE_HOME is unset]', helpValue: 'PATH'},
  cache: {type: 'boolean', negatable: true, summary: 'Remember outcomes between runs (--no-cache turns it off).'},
  verbose: {type: 'boolean', char: 'v', summary: 'Trace every step on stderr.'},
  json: {type: 'boolean', summary: 'Describe the run as one JSON document on stdout.'},
  'print-recipe': {type: 'value', summary: "Print an MTA recipe (README, man page) with this installation's absolute paths, and exit 0.", helpValue: Object.keys(RECIPES).join('|'), choices: Object.keys(RECIPES)},
} as const satisfies Record<string, FlagSpec>

export type FlagName = keyof typeof FLAGS

/** `--help`/`-h` and `--version`: answered by oclif (bin/run.js hands the line over). */
export const OCLIF_FLAGS = {help: 'h', version: undefined} as const

/** Flags as parsed: a value option's text, a boolean's state; absent when not given. */
export type ParsedFlags = {-readonly [K in FlagName]?: (typeof FLAGS)[K] extends {multiple: true} ? string[] : (typeof FLAGS)[K]['type'] extends 'value' ? string : boolean}

/**
 * `smtpdcheck serve`'s options: the probe, DNS and cache options of the command (the same
 * entries, the same value rules in src/cli/run.ts), and the server's own.
 */
export const SERVE_FLAGS = {
  listen: {type: 'value', multiple: true, summary: 'Where to answer policy requests: inet:HOST:PORT (HOST an address, [IPv6] or a name) or unix:PATH (repeatable).', helpValue: 'inet:HOST:PORT|unix:PATH'},
  stdio: {type: 'boolean', summary: 'Answer one connection on standard input and output (Postfix spawn(8)), then exit 0.', exclusive: ['listen', 'query']},
  metrics: {type: 'value', summary: 'Serve the counters as Prometheus text at GET /metrics on this endpoint.', helpValue: 'inet:HOST:PORT', exclusive: ['stdio']},
  query: {type: 'value', summary: 'Ask the serve at this endpoint what Postfix would ask for --recipient; print the action; exit 1 on DEFER_IF_PERMIT, 0 on DUNNO, 2 on failure.', helpValue: 'inet:HOST:PORT|unix:PATH', exclusive: ['listen']},
  recipient: {type: 'value', summary: 'With --query: the recipient address to ask about.', helpValue: 'ADDRESS'},
  'server-address': {type: 'value', summary: 'With --query: the local address the SMTP client connected to (Postfix\'s server_address).', helpValue: 'ip-addr'},
  stop: {...FLAGS.stop, summary: 'An identity of the local host besides each request\'s server_address (repeatable: the public names and addresses of a host behind NAT; a name is resolved at start and then per request).'},
  timeout: {...FLAGS.timeout, summary: `Each decision's deadline in seconds (MX lookup, address lookups, probes); past it the reply is DUNNO. [default: ${DEFAULT_TIMEOUT_S}]`},
  port: FLAGS.port,
  'attempt-delay': FLAGS['attempt-delay'],
  'dns-server': {...FLAGS['dns-server'], summary: 'Send MX, A and AAAA queries straight to this DNS server instead of the system resolver.'},
  ipv4: FLAGS.ipv4,
  ipv6: FLAGS.ipv6,
  'negative-ttl': FLAGS['negative-ttl'],
  'positive-ttl': {...FLAGS['positive-ttl'], summary: `Seconds an available address is believed without probing. [default: ${SERVE_POSITIVE_TTL}]`},
  'cache-file': {...FLAGS['cache-file'], summary: 'Also keep the cache in this file (read at start, written as it changes). [default: memory only]'},
  cache: {...FLAGS.cache, summary: 'Remember probe outcomes (--no-cache: never; probes in flight are still shared).'},
  'max-connections': {type: 'value', summary: 'Connections open at once; one more is closed at once. [default: 1000]', helpValue: 'N'},
  'socket-mode': {type: 'value', summary: 'Mode of a unix socket, octal. [default: 0666]', helpValue: 'MODE'},
  verbose: {...FLAGS.verbose, summary: 'Add each request\'s probe trace to the log (lines tagged with the request number).'},
} as const satisfies Record<string, FlagSpec>

export type ServeFlags = {-readonly [K in keyof typeof SERVE_FLAGS]?: (typeof SERVE_FLAGS)[K] extends {multiple: true} ? string[] : (typeof SERVE_FLAGS)[K]['type'] extends 'value' ? string : boolean}
