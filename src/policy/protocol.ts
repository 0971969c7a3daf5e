// Postfix policy delegation protocol (SPEC §11, Postfix SMTPD_POLICY_README). Pure: no
// socket, no clock. A request is `name=value` lines ending with an empty line; the reply is
// `action=…` and an empty line; "in case of trouble" the server logs and disconnects.
import {isIP} from 'node:net'
import {domainToASCII} from 'node:url'

import {hostnameProblem, literalFamily, normalizeAddress} from '../core/grammar.js'
import {printable} from '../core/greeting.js'

/** The longest line, in octets, without its LF (and a CR just before it). */
export const MAX_LINE_OCTETS = 8 * 1024
/** The largest request, in octets, every line ending and the closing empty line included. */
export const MAX_REQUEST_OCTETS = 64 * 1024
/** The most attribute lines in one request. */
export const MAX_ATTRIBUTES = 1000

export type Attributes = ReadonlyMap<string, string>

/** What goes wrong in a byte stream; the connection then ends without a reply. */
export type TroubleKind = 'nul' | 'line-too-long' | 'request-too-long' | 'too-many-attributes' | 'no-equals' | 'incomplete'

export interface Trouble {
  readonly kind: TroubleKind
  /** One line for the log (control characters escaped). */
  readonly reason: string
}

export interface ParseStep {
  /** Requests completed by this chunk, in order. */
  readonly requests: Attributes[]
  /** Set once the stream is bad; nothing after it is read. */
  readonly trouble?: Trouble
  /** What was not read because `maxRequests` requests were complete: push it again later. */
  readonly rest?: Uint8Array
}

const LF = 0x0a
const CR = 0x0d
const NUL = 0x00
const EQUALS = 0x3d

const TROUBLE_TEXT: Record<TroubleKind, string> = {
  nul: 'NUL byte in request',
  'line-too-long': `line longer than ${MAX_LINE_OCTETS} octets`,
  'request-too-long': `request longer than ${MAX_REQUEST_OCTETS} octets`,
  'too-many-attributes': `request with more than ${MAX_ATTRIBUTES} attributes`,
  'no-equals': 'line without "="',
  incomplete: 'connection ended in the middle of a request (no empty line)',
}

function trouble(kind: TroubleKind, detail = ''): Trouble {
  return {kind, reason: TROUBLE_TEXT[kind] + detail}
}

/**
 * Incremental request parser. A line ends at LF; one CR just before the LF is dropped (a
 * hand-typed or Exim request may use CR LF), any other CR is part of the value. Values are
 * UTF-8 (SMTPUTF8 addresses); a value may contain `=` (the name ends at the first one);
 * a repeated name keeps its last value. Trouble is reported at the first octet that makes
 * it certain, so the result does not depend on how the stream is cut into chunks, and no
 * more than one line (≤ MAX_LINE_OCTETS + 1) and one request's attributes are ever held.
 */
export class RequestParser {
  #line: Buffer[] = []
  #lineOctets = 0
  #requestOctets = 0
  #attributes = new Map<string, string>()
  #count = 0
  #trouble?: Trouble

  /** True while a request has begun and not ended (a partial line or some attributes). */
  get midRequest(): boolean {
    return this.#requestOctets > 0
  }

  /** Feed the next chunk of the stream; stop after `maxRequests` complete requests. */
  push(chunk: Uint8Array, maxRequests = Infinity): ParseStep {
    const requests: Attributes[] = []
    if (this.#trouble) return {requests, trouble: this.#trouble}
    let start = 0
    for (let i = 0; i < chunk.length; i++) {
      const octet = chunk[i]
      this.#requestOctets++
      if (octet === NUL) return this.#fail(requests, trouble('nul'))
      if (this.#requestOctets > MAX_REQUEST_OCTETS) return this.#fail(requests, trouble('request-too-long'))
      if (octet !== LF) {
        // Only the last octet of a line may be a CR that is dropped: one more is too long.
        if (this.#lineOctets + (i - start) + 1 > MAX_LINE_OCTETS + 1) return this.#fail(requests, trouble('line-too-long'))
        continue
      }
      this.#line.push(Buffer.from(chunk.buffer, chunk.byteOffset + start, i - start))
      this.#lineOctets += i - start
      start = i + 1
      const problem = this.#endLine(requests)
      if (problem) return this.#fail(requests, problem)
      if (requests.length >= maxRequests && start < chunk.length) return {requests, rest: chunk.subarray(start)}
    }
    if (start < chunk.length) {
      this.#line.push(Buffer.from(chunk.subarray(start)))
      this.#lineOctets += chunk.length - start
    }
    return {requests}
  }

  /** The stream has ended: trouble if it stopped inside a request. */
  end(): Trouble | undefined {
    if (this.#trouble) return this.#trouble
    if (this.#lineOctets > MAX_LINE_OCTETS) this.#trouble = trouble('line-too-long')
    else if (this.midRequest) this.#trouble = trouble('incomplete')
    return this.#trouble
  }

  #fail(requests: Attributes[], problem: Trouble): ParseStep {
    this.#trouble = problem
    this.#line = []
    this.#attributes = new Map()
    return {requests, trouble: problem}
  }

  /** A whole line is in #line: an attribute, or the empty line that ends a request. */
  #endLine(requests: Attributes[]): Trouble | undefined {
    let line = Buffer.concat(this.#line, this.#lineOctets)
    this.#line = []
    this.#lineOctets = 0
    if (line.length > 0 && line[line.length - 1] === CR) line = line.subarray(0, -1)
    if (line.length > MAX_LINE_OCTETS) return trouble('line-too-long')
    if (line.length === 0) {
      requests.push(this.#attributes)
      this.#attributes = new Map()
      this.#count = 0
      this.#requestOctets = 0
      return undefined
    }
    const equals = line.indexOf(EQUALS)
    if (equals < 0) return trouble('no-equals', `: "${printable(line.toString('latin1').slice(0, 64))}"`)
    if (++this.#count > MAX_ATTRIBUTES) return trouble('too-many-attributes')
    this.#attributes.set(line.toString('utf8', 0, equals), line.toString('utf8', equals + 1))
    return undefined
  }
}

/** What a request asks: a decision for a recipient domain, or a DUNNO with its reason. */
export type Question =
  | {readonly kind: 'decide'; readonly domain: string; readonly serverAddress?: string}
  | {readonly kind: 'dunno'; readonly note: string}

/**
 * The recipient's domain: the part after the last `@`, lower-cased, trailing dot dropped,
 * a Unicode name in its ASCII form; undefined when it is not a host name (no `@`, an
 * address literal such as `[192.0.2.1]`, the null sender `<>`, …).
 */
export function recipientDomain(recipient: string): string | undefined {
  const at = recipient.lastIndexOf('@')
  if (at < 0) return undefined
  const ascii = toAscii(recipient.slice(at + 1))
  const domain = (ascii.endsWith('.') ? ascii.slice(0, -1) : ascii).toLowerCase()
  return hostnameProblem(domain) === undefined ? domain : undefined
}

/**
 * A Unicode domain in its ASCII (punycode) form; ASCII text unchanged. Text with a control
 * character, a space or `%` is left as it is (and fails the host-name check): the URL
 * host parser behind domainToASCII would silently drop tabs and newlines or decode `%`.
 */
function toAscii(domain: string): string {
  if (/^[\x21-\x7e]*$/.test(domain) || /[\x00-\x20\x7f-\x9f%]/.test(domain)) return domain
  return domainToASCII(domain)
}

/** `server_address` as the local host when it is an IP address (Postfix ≥ 3.2 sends it). */
export function serverAddress(value: string | undefined): string | undefined {
  if (value === undefined || isIP(value) === 0 || literalFamily(value) === 0) return undefined
  return normalizeAddress(value)
}

/**
 * The decision a request asks for (SPEC §11): only `request=smtpd_access_policy` at
 * `protocol_state=RCPT` with a recipient domain, and `server_address` (normalised) when it is
 * an address: one identity of the local host, besides every serve --stop. Everything else is
 * DUNNO, with the reason for the log.
 */
export function question(request: Attributes): Question {
  const kind = request.get('request')
  if (kind !== 'smtpd_access_policy') return {kind: 'dunno', note: `request=${printable(kind ?? '')} is not smtpd_access_policy`}
  const state = request.get('protocol_state')
  if (state?.toUpperCase() !== 'RCPT') return {kind: 'dunno', note: `protocol_state=${printable(state ?? '')} is not RCPT`}
  const domain = recipientDomain(request.get('recipient') ?? '')
  if (domain === undefined) return {kind: 'dunno', note: 'no recipient domain'}
  const address = serverAddress(request.get('server_address'))
  return address === undefined ? {kind: 'decide', domain} : {kind: 'decide', domain, serverAddress: address}
}

/** A server name fit for a reply line: a host name or an IP address, nothing else. */
export function safeServerName(name: string): boolean {
  if (isIP(name) !== 0) return true
  return /^[\x21-\x7e]+$/.test(name) && hostnameProblem(name) === undefined
}

/**
 * The reply: `action=DEFER_IF_PERMIT 4.7.1 Please use server NAME` when a better MX is up,
 * else `action=DUNNO`; each closed by an empty line. A name that could break the reply
 * (a newline or control character from DNS) gives DUNNO: fail open, never inject.
 */
export function formatReply(server: string | undefined): string {
  if (server === undefined || !safeServerName(server)) return 'action=DUNNO\n\n'
  return `action=DEFER_IF_PERMIT 4.7.1 Please use server ${server}\n\n`
}
