// Server-word grammar and option values (SPEC §2). Pure: no socket, no DNS, no clock.
import ipaddr from 'ipaddr.js'

import {quote, UsageError} from './errors.js'

export {UsageError} from './errors.js'

export type HostKind = 'name' | 'ipv4' | 'ipv6'

export interface Entry {
  /** The word as the user gave it, without `prio:` (what is printed). */
  readonly name: string
  /** Host name lower-cased without trailing dot, or the normalised address. */
  readonly host: string
  readonly kind: HostKind
  readonly prio?: number
  /** Position in the de-duplicated list. */
  readonly index: number
}

export const MAX_PRIO = 65_535
const MAX_NAME_OCTETS = 253
const MAX_LABEL_OCTETS = 63
const LABEL = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/i
const DECIMAL = /^\d+$/
/** Digits and dots only, at least one digit: meant as an IPv4 address (two linear scans, no backtracking). */
export const dotted = (text: string) => /^[\d.]+$/.test(text) && /\d/.test(text)

/** Why `name` is not a host name (RFC 1123 / RFC 3696 §2), or undefined if it is one. */
export function hostnameProblem(name: string): string | undefined {
  const bare = name.endsWith('.') ? name.slice(0, -1) : name
  if (bare === '') return 'empty host name'
  if (bare.length > MAX_NAME_OCTETS) return `host name longer than ${MAX_NAME_OCTETS} octets`
  const labels = bare.split('.')
  for (const label of labels) {
    if (label === '') return 'empty label in host name'
    if (label.length > MAX_LABEL_OCTETS) return `label longer than ${MAX_LABEL_OCTETS} octets`
    if (!LABEL.test(label)) return `bad label ${quote(label)} (letters, digits and inner hyphens only)`
  }
  if (DECIMAL.test(labels.at(-1)!)) return 'not a dotted-quad IPv4 address, and a host name may not end in an all-digit label'
  return undefined
}

/** A host name as compared (SPEC §2: case- and trailing-dot-insensitive): lower case, no trailing dot. */
export const canonicalName = (name: string): string => name.toLowerCase().replace(/\.$/, '')

/** Normalised text of an IP literal (ipaddr.js; `::ffff:a.b.c.d` becomes `a.b.c.d`). */
export function normalizeAddress(address: string): string {
  // Four decimal parts without leading zeros are already the normal form.
  if (ipaddr.IPv4.isValidFourPartDecimal(address)) return address
  const parsed = ipaddr.parse(address)
  if (parsed.kind() === 'ipv6') {
    const v6 = parsed as ipaddr.IPv6
    if (v6.isIPv4MappedAddress()) return v6.toIPv4Address().toString()
  }
  return parsed.toString()
}

/**
 * The family of a strict IP literal, or 0: what Node's net.isIP says of a text without a
 * zone (`%eth0`, never a literal here), four decimal parts without leading zeros for IPv4,
 * also as an IPv6 address's last 32 bits. From ipaddr.js, not node:net: loading node:net
 * (and the streams under it) costs ~4 ms of every run, most of which probe nothing.
 */
export function literalFamily(text: string): 0 | 4 | 6 {
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) return 4
  if (text.includes('%') || !text.includes(':') || !ipaddr.IPv6.isValid(text)) return 0
  return text.includes('.') && !ipaddr.IPv4.isValidFourPartDecimal(text.slice(text.lastIndexOf(':') + 1)) ? 0 : 6
}

/** The family of a normalised address literal (what the grammar and the resolvers give). */
export const familyOf = (address: string): 4 | 6 => (address.includes(':') ? 6 : 4)

/** `address:port`, bracketing IPv6: `127.0.0.1:25`, `[::1]:25`. */
export function hostPort(address: string, port: number): string {
  return familyOf(address) === 6 ? `[${address}]:${port}` : `${address}:${port}`
}

/** The normalised address and its kind (`::ffff:a.b.c.d` is the IPv4 address it maps). */
function literalHost(text: string): {host: string; kind: HostKind} {
  const host = normalizeAddress(text)
  return {host, kind: familyOf(host) === 6 ? 'ipv6' : 'ipv4'}
}

/** inet_aton(3) would read it as an IPv4 address (`127.1`, `0x7f000001`, `010.0.0.1`): not a name. */
function inetAtonForm(text: string): boolean {
  const labels = text.replace(/\.$/, '').split('.')
  return labels.length <= 4 && labels.every((label) => /^(?:0x[0-9a-f]*|\d+)$/i.test(label))
}

function parseHost(text: string, word: string): {host: string; kind: HostKind} {
  if (literalFamily(text) !== 0) return literalHost(text)
  if (dotted(text) || inetAtonForm(text)) {
    throw new UsageError(`bad server ${quote(word)}: not a dotted-quad IPv4 address (four decimal parts 0-255)`)
  }
  const problem = hostnameProblem(text)
  if (problem) throw new UsageError(`bad server ${quote(word)}: ${problem}`)
  return {host: canonicalName(text), kind: 'name'}
}

function parsePrio(text: string, word: string): number {
  if (!DECIMAL.test(text) || Number(text) > MAX_PRIO) {
    throw new UsageError(`bad server ${quote(word)}: priority ${quote(text)} is not a number from 0 to ${MAX_PRIO}`)
  }
  return Number(text)
}

/** An IPv6 literal with a zone index (`fe80::1%eth0`, `[fe80::1%2]`), which no word takes. */
function zoned(text: string): boolean {
  const inner = text.replace(/^\d+:(?=\[)/, '').replace(/^\[(.*)\]$/s, '$1')
  const percent = inner.indexOf('%')
  return percent > 0 && literalFamily(inner.slice(0, percent)) === 6
}

/** The common mistakes, named before the grammar's own message: `host:port`, a zone index. */
function mistake(word: string): string | undefined {
  if (zoned(word)) return 'zone indexes (%…) are not supported: give the address without one'
  // [prio:]host:port, host an IPv4 address, a name or a bracketed IPv6 address (never all digits).
  const hostPort = /^(?:\d+:)?(\[[^\]]*\]|[^:[\]]+):(\d+)$/.exec(word)
  if (hostPort && !DECIMAL.test(hostPort[1])) return `a port goes in --port, not in the server word (--port ${hostPort[2]} ${word.slice(0, -hostPort[2].length - 1)})`
  return undefined
}

/** One server word: `host`, `prio:host`, `[v6]`, `prio:[v6]`, or a bare IPv6 literal. */
export function parseServerWord(word: string, index = 0): Entry {
  if (word === '') throw new UsageError('bad server "": empty word')
  // The usual mistake of a caller that passes the whole MX list as one argument.
  if (/\s/.test(word)) throw new UsageError(`bad server ${quote(word)}: contains white space (one server per argument)`)
  const why = mistake(word)
  if (why) throw new UsageError(`bad server ${quote(word)}: ${why}`)
  if (literalFamily(word) === 6) return {name: word, ...literalHost(word), index}
  let prio: number | undefined
  let rest = word
  const colon = word.indexOf(':')
  if (colon >= 0 && !word.startsWith('[')) {
    prio = parsePrio(word.slice(0, colon), word)
    rest = word.slice(colon + 1)
  }
  if (rest.startsWith('[')) {
    const inner = rest.endsWith(']') ? rest.slice(1, -1) : ''
    if (literalFamily(inner) !== 6) throw new UsageError(`bad server ${quote(word)}: brackets must hold an IPv6 address`)
    return {name: rest, ...literalHost(inner), prio, index}
  }
  if (rest.includes(':')) {
    throw new UsageError(`bad server ${quote(word)}: an IPv6 address with a priority must be bracketed, e.g. 10:[2001:db8::1]`)
  }
  if (rest === '') throw new UsageError(`bad server ${quote(word)}: no host after the priority`)
  return {name: rest, ...parseHost(rest, word), prio, index}
}

/** Parse every word; the same host given twice keeps its first position and lowest priority. */
export function parseServerList(words: readonly string[]): Entry[] {
  const byHost = new Map<string, Entry>()
  for (const word of words) {
    const entry = parseServerWord(word)
    const seen = byHost.get(entry.host)
    if (!seen) {
      byHost.set(entry.host, {...entry, index: byHost.size})
    } else if (entry.prio !== undefined && (seen.prio === undefined || entry.prio < seen.prio)) {
      byHost.set(entry.host, {...seen, prio: entry.prio})
    }
  }
  return [...byHost.values()]
}

/** One identity of the local host as given (`--stop`, serve's `server_address`): an address (normalised) or a name to resolve. */
export type StopGiven = {readonly address: string} | {readonly name: string}

/** `--stop`: an IP literal (returned normalised) or a host name to resolve. */
export function parseStop(text: string): StopGiven {
  const inner = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text
  if (literalFamily(inner) !== 0) return {address: normalizeAddress(inner)}
  if (zoned(text)) throw new UsageError(`bad --stop ${quote(text)}: zone indexes (%…) are not supported: give the address without one`)
  // `--stop 10:mx1 20:mx2`: the value was forgotten and the first server word taken for it.
  if (/^\d+:./s.test(text)) throw new UsageError(`bad --stop ${quote(text)}: looks like a server word (prio:host); --stop takes the local host's address or name`)
  if (dotted(text)) throw new UsageError(`bad --stop ${quote(text)}: not a dotted-quad IPv4 address`)
  const problem = hostnameProblem(text)
  if (problem) throw new UsageError(`bad --stop ${quote(text)}: ${problem}`)
  return {name: text}
}

const NUMBER = /^(?:\d+(?:\.\d*)?|\.\d+)$/

/** The longest timer Node can set (2^31-1 ms, about 24.8 days); longer ones fire at once. */
export const MAX_TIMER_SECONDS = Math.floor((2 ** 31 - 1) / 1000)

/** A non-negative decimal number of seconds, at most `max` (`--timeout`, TTLs). */
export function parseSeconds(flag: string, text: string, max = Number.MAX_VALUE): number {
  if (!NUMBER.test(text) || !(Number(text) <= max)) {
    const limit = max < Number.MAX_VALUE ? ` up to ${max}` : ''
    throw new UsageError(`bad --${flag} ${quote(text)}: expected a non-negative number of seconds${limit}`)
  }
  return Number(text)
}

/** A whole number in [min, max] (`--port`, `--attempt-delay`). */
export function parseInteger(flag: string, text: string, min: number, max: number): number {
  if (!DECIMAL.test(text) || Number(text) < min || Number(text) > max) {
    throw new UsageError(`bad --${flag} ${quote(text)}: expected a whole number from ${min} to ${max}`)
  }
  return Number(text)
}

export interface HostPort {
  readonly address: string
  readonly port: number
}

/** `--dns-server ADDR[:PORT]`: `127.0.0.1`, `127.0.0.1:5353`, `::1`, `[::1]:5353`. */
export function parseDnsServer(text: string): HostPort {
  const bad = (why: string) => new UsageError(`bad --dns-server ${quote(text)}: ${why}`)
  let address = text
  let port = 53
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(text)
  if (bracket) {
    address = bracket[1]
    if (bracket[2] !== undefined) port = Number(bracket[2])
  } else if (literalFamily(text) === 0 && text.includes(':')) {
    const colon = text.lastIndexOf(':')
    address = text.slice(0, colon)
    if (!DECIMAL.test(text.slice(colon + 1))) throw bad('port is not a number')
    port = Number(text.slice(colon + 1))
  }
  if (literalFamily(address) === 0) throw bad('expected an IP address, optionally with :PORT ([v6]:PORT)')
  if (port < 1 || port > 65_535) throw bad('port must be from 1 to 65535')
  return {address: normalizeAddress(address), port}
}
