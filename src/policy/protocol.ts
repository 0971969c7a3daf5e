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
export type TroubleKind = 'nul' | 'line-too-long' | 'request-too-long' | 'too-many-attributes' | 'no-equals' | 'empty' | 'incomplete'

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
  empty: 'empty line where a request should begin (a request without attributes)',
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

  /**
   * Feed the next chunk of the stream; stop after `maxRequests` complete requests. A line at
   * a time (native searches for LF and NUL), with the per-octet limits checked by position:
   * the trouble found is the one the first offending octet makes, whatever the chunking.
   */
  push(chunk: Uint8Array, maxRequests = Infinity): ParseStep {
    const requests: Attributes[] = []
    if (this.#trouble) return {requests, trouble: this.#trouble}
    const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length)
    const nul = bytes.indexOf(NUL)
    let start = 0
    while (start < bytes.length) {
      const lf = bytes.indexOf(LF, start)
      const end = lf < 0 ? bytes.length : lf // the line's octets in this chunk: [start, end)
      const through = lf < 0 ? end : end + 1 // with its LF
      // Only the last octet of a line may be a CR that is dropped: one more is too long.
      const atLine = start + MAX_LINE_OCTETS + 1 - this.#lineOctets
      const atRequest = start + MAX_REQUEST_OCTETS - this.#requestOctets
      const first = Math.min(nul >= start && nul < end ? nul : Infinity, atRequest < through ? atRequest : Infinity, atLine < end ? atLine : Infinity)
      if (first !== Infinity) return this.#fail(requests, trouble(first === nul ? 'nul' : first === atRequest ? 'request-too-long' : 'line-too-long'))
      this.#requestOctets += through - start
      if (lf < 0) {
        this.#line.push(Buffer.from(bytes.subarray(start)))
        this.#lineOctets += end - start
        break
      }
      const problem = this.#line.length === 0 ? this.#endLine(bytes, start, lf, requests) : this.#endLine(this.#joinLine(bytes, start, lf), 0, this.#lineOctets, requests)
      this.#line = []
      this.#lineOctets = 0
      if (problem) return this.#fail(requests, problem)
      start = lf + 1
      if (requests.length >= maxRequests && start < bytes.length) return {requests, rest: bytes.subarray(start)}
    }
    return {requests}
  }

  /** The line begun in earlier chunks, with its end [start, lf) from this one; #lineOctets its length. */
  #joinLine(bytes: Buffer, start: number, lf: number): Buffer {
    this.#line.push(bytes.subarray(start, lf))
    this.#lineOctets += lf - start
    return Buffer.concat(this.#line, this.#lineOctets)
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

  /** A whole line, bytes[from, to) without its LF: an attribute, or the empty line that ends a request. */
  #endLine(bytes: Buffer, from: number, to: number, requests: Attributes[]): Trouble | undefined {
    const end = to > from && bytes[to - 1] === CR ? to - 1 : to
    if (end - from > MAX_LINE_OCTETS) return trouble('line-too-long')
    if (end === from) {
      // Not a request: Postfix never sends one, and a reply to it would be a reply to nothing.
      if (this.#count === 0) return trouble('empty')
      requests.push(this.#attributes)
      this.#attributes = new Map()
      this.#count = 0
      this.#requestOctets = 0
      return undefined
    }
    const equals = bytes.indexOf(EQUALS, from)
    if (equals < 0 || equals >= end) return trouble('no-equals', `: "${printable(bytes.toString('latin1', from, Math.min(end, from + 64)))}"`)
    if (++this.#count > MAX_ATTRIBUTES) return trouble('too-many-attributes')
    this.#attributes.set(bytes.toString('utf8', from, equals), bytes.toString('utf8', equals + 1, end))
    return undefined
  }
}

/** What a request asks: a decision for a recipient domain, or a DUNNO with its reason. */
export type Question =
  | {readonly kind: 'decide'; readonly domain: string; readonly serverAddress?: string}
  | {readonly kind: 'dunno'; readonly note: string; readonly domain?: string}

/**
 * The recipient's domain: the part after the last `@`, lower-cased, trailing dot dropped,
 * a Unicode name in its ASCII form; undefined when it is not a host name (no `@`, an
 * address literal such as `[192.0.2.1]`, the null sender `<>`, …).
 */
export function recipientDomain(recipient: string, domainOf = hostDomain): string | undefined {
  const at = recipient.lastIndexOf('@')
  return at < 0 ? undefined : domainOf(recipient.slice(at + 1))
}

/** The text after a recipient's `@` as a host name (recipientDomain), or undefined. */
function hostDomain(text: string): string | undefined {
  const ascii = toAscii(text)
  const domain = (ascii.endsWith('.') ? ascii.slice(0, -1) : ascii).toLowerCase()
  return hostnameProblem(domain) === undefined ? domain : undefined
}

/** How a request's texts are read: recipientDomain's part after the `@`, serverAddress. */
export interface Readers {
  readonly domainOf: (text: string) => string | undefined
  readonly serverAddress: (value: string | undefined) => string | undefined
}

/**
 * Readers that remember their last text and its reading: a Postfix client sends the same
 * server_address, and often the same domain, request after request on its connection.
 */
export function rememberingReaders(): Readers {
  return {domainOf: rememberLast(hostDomain), serverAddress: rememberLast(serverAddress)}
}

function rememberLast<A, R>(read: (text: A) => R): (text: A) => R {
  let last: {text: A; result: R} | undefined
  return (text) => {
    if (last === undefined || last.text !== text) last = {text, result: read(text)}
    return last.result
  }
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
  if (value === undefined || literalFamily(value) === 0) return undefined
  return normalizeAddress(value)
}

/**
 * The decision a request asks for (SPEC §11): only `request=smtpd_access_policy` at
 * `protocol_state=RCPT` with a recipient domain, and `server_address` (normalised) when it is
 * an address: one identity of the local host, besides every serve --stop. Everything else is
 * DUNNO, with the reason for the log.
 */
export function question(request: Attributes, read: Readers = {domainOf: hostDomain, serverAddress}): Question {
  const kind = request.get('request')
  if (kind !== 'smtpd_access_policy') return {kind: 'dunno', note: `request=${printable(kind ?? '')} is not smtpd_access_policy`}
  const state = request.get('protocol_state')
  if (state?.toUpperCase() !== 'RCPT') return {kind: 'dunno', note: `protocol_state=${printable(state ?? '')} is not RCPT`}
  const recipient = request.get('recipient') ?? ''
  const domain = recipientDomain(recipient, read.domainOf)
  if (domain === undefined) return noDomain(recipient)
  const address = read.serverAddress(request.get('server_address'))
  return address === undefined ? {kind: 'decide', domain} : {kind: 'decide', domain, serverAddress: address}
}

/**
 * Why a recipient gives no domain, for the log: none at all, an address literal, or a
 * malformed domain (logged as it was sent — the log quotes and escapes it — never the
 * local part).
 */
function noDomain(recipient: string): Question & {kind: 'dunno'} {
  const at = recipient.lastIndexOf('@')
  const text = at < 0 ? '' : recipient.slice(at + 1)
  if (text === '') return {kind: 'dunno', note: 'no recipient domain'}
  if (text.startsWith('[')) return {kind: 'dunno', note: 'recipient domain is an address literal', domain: text}
  return {kind: 'dunno', note: `malformed recipient domain: ${hostnameProblem(toAscii(text)) ?? 'not a host name'}`, domain: text}
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
