// serve's log (SPEC §11): one `key=value` line per event on stderr, levels journald reads.
// A value is written bare when it is a plain token, else as a JSON string (quoted, `"` and
// `\` escaped, every control character escaped), so that a strict key=value parser reads
// every line, whatever a client or DNS put in it.
import {fstatSync} from 'node:fs'

export type Level = 'error' | 'warning' | 'info' | 'debug'
/** syslog priorities (sd-daemon(3) prefixes: `<3>` error … `<7>` debug). */
const PRIORITY: Record<Level, number> = {error: 3, warning: 4, info: 6, debug: 7}

export type Fields = Readonly<Record<string, string | number | boolean | undefined>>

/** A client's text is cut to this many characters in the log (a domain has at most 253). */
export const MAX_VALUE_CHARS = 300

/** Characters a bare value may hold: printable ASCII but space, `"`, `=` and `\`. */
const BARE = /^[!#-<>-[\]-~]+$/
const ESCAPE = /["\\\u0000-\u001f\u007f-\u009f\u2028\u2029]/g
const SHORT: Record<string, string> = {'"': '\\"', '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t'}

/** A value as written: bare if it is a plain token, else a JSON string (controls as \uXXXX). */
export function quoteValue(value: string): string {
  const text = value.length > MAX_VALUE_CHARS ? `${value.slice(0, MAX_VALUE_CHARS)}…` : value
  if (BARE.test(text)) return text
  return `"${text.replace(ESCAPE, (c) => SHORT[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}"`
}

/** ` key=value` (a space first); '' for undefined; booleans are yes/no. */
function pair(key: string, value: string | number | boolean | undefined): string {
  if (value === undefined) return ''
  return ` ${key}=${quoteValue(typeof value === 'boolean' ? (value ? 'yes' : 'no') : String(value))}`
}

/** `key=value key2="a b"`; undefined fields are left out, booleans are yes/no. */
export function kv(fields: Fields): string {
  let line = ''
  for (const key in fields) line += pair(key, fields[key])
  return line.slice(1)
}

/**
 * Is stderr the journal? systemd sets JOURNAL_STREAM to `device:inode` of the stream it
 * connects (systemd.exec(5)); it is ours only if fd 2 is that very stream (a child whose
 * stderr was redirected inherits the variable, not the stream).
 */
export function stderrIsJournal(env: NodeJS.ProcessEnv = process.env, fd = 2): boolean {
  const match = /^(\d+):(\d+)$/.exec(env.JOURNAL_STREAM ?? '')
  if (!match) return false
  try {
    const stat = fstatSync(fd, {bigint: true})
    return stat.dev === BigInt(match[1]) && stat.ino === BigInt(match[2])
  } catch {
    return false
  }
}

export interface Log {
  /**
   * A line in server.ts's convention: `warning: text` / `error: text` (level and `msg`), a
   * line already in key=value form (`event=…`, info), or other text (info, `msg`).
   */
  (line: string): void
  /** One event at `level`; debug lines only when verbose. */
  at(level: Level, fields: Fields): void
  /** Write what is pending now (before exit). */
  flush(): void
}

export interface LogOptions {
  /** Where the text goes (default: stderr); undefined: nowhere (stderr is the policy stream). */
  readonly write?: ((text: string) => void) | undefined
  /** Prefix each line with its syslog priority `<N>` (stderr is the journal). */
  readonly journal?: boolean
  /** Write debug lines (--verbose). */
  readonly verbose?: boolean
}

/**
 * The log: lines `[<N>]smtpdcheck: level=… event=… …`. The lines of one turn of the event
 * loop leave in one write: stderr is synchronous, and a write per decision would cost a
 * system call each. A closed stderr is ignored (bin/run.js).
 */
export function createLog({write = (text) => void process.stderr.write(text), journal = false, verbose = false}: LogOptions = {}): Log {
  const pending: string[] = []
  const flush = () => {
    if (pending.length > 0) write?.(pending.join(''))
    pending.length = 0
  }
  /** One line at `level` whose key=value text (from `level=…` on) is `body`, written at the end of this turn. */
  const queue = (level: Level, body: string) => {
    if (pending.length === 0) setImmediate(flush)
    pending.push(`${journal ? `<${PRIORITY[level]}>` : ''}smtpdcheck: ${body}\n`)
  }
  const at = (level: Level, fields: Fields) => {
    if (level === 'debug' && !verbose) return
    queue(level, kv({level, ...fields}))
  }
  const log = (line: string) => {
    const level = /^(warning|error): /.exec(line)?.[1] as Level | undefined
    if (level) return at(level, {event: level, msg: line.slice(level.length + 2)})
    if (/^event=[a-z-]+( |$)/.test(line)) return queue('info', `level=info ${line}`)
    at('info', {msg: line})
  }
  return Object.assign(log, {at, flush})
}

/** What the log says of one request (server.ts builds it; the stats count it). */
export interface DecisionRecord {
  /** The request's number in this process (the tag of its --verbose lines). */
  readonly request: number
  readonly domain?: string
  readonly decision: 'defer' | 'dunno'
  readonly server?: string
  readonly ms?: number
  readonly cached?: boolean
  readonly note: string
  /** Postfix's attributes that tie the line to Postfix's own log. */
  readonly queue_id?: string
  readonly client_address?: string
  readonly instance?: string
}

/** `event=decision request=7 domain=example.org decision=defer server=mx1.example.org ms=12 cached=no note=… queue_id=…` */
export function decisionLine(record: DecisionRecord): string {
  const {request, domain, decision, server, ms, cached, note, queue_id, client_address, instance} = record
  // Written field by field, not through kv(): a line per request, the cached path's main cost after the socket.
  return `event=decision${pair('request', request)}${pair('domain', domain)}${pair('decision', decision)}${pair('server', server)}${pair('ms', ms === undefined ? undefined : Math.round(ms))}${pair('cached', cached)}${pair('note', note)}${pair('queue_id', queue_id)}${pair('client_address', client_address)}${pair('instance', instance)}`
}
