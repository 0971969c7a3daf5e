// Greeting parsing (SPEC §4). Pure: bytes in, verdict out; no socket, no clock.
import {escapeControls} from './errors.js'

/** Longest greeting line accepted, line ending excluded (RFC 5321 §4.5.3.1.5 counts 512 with CRLF; we allow 512 without). */
export const MAX_LINE_OCTETS = 512
const LF = 0x0a
const CR = 0x0d
const REPLY = /^([2-5][0-9][0-9])([ -]|$)/

export type GreetingVerdict =
  | {kind: 'available'; final: boolean; line: string}
  | {kind: 'rejected'; code: number; text: string; line: string}
  | {kind: 'not-smtp'; line: string; why: string}

/** What is known after some bytes: a complete first line, too long, or more needed. */
export type LineScan =
  | {kind: 'line'; line: string}
  | {kind: 'too-long'; line: string}
  /** The first octets can no longer begin a reply line (a TLS record, binary junk). */
  | {kind: 'not-reply'; line: string}
  | {kind: 'more'}

/**
 * Look for the first line in what has been received so far (`received` holds at most
 * MAX_LINE_OCTETS + 2 octets: callers keep only that much). A line ends at LF; a CR just
 * before it is dropped.
 */
export function scanFirstLine(received: Uint8Array): LineScan {
  const lf = received.indexOf(LF)
  if (lf < 0) {
    // Without its CR LF, a line of MAX_LINE_OCTETS + 1 octets can no longer be valid
    // (a lone CR at the very end may still be the start of CR LF).
    const pending = received.at(-1) === CR ? received.length - 1 : received.length
    if (pending > MAX_LINE_OCTETS) return {kind: 'too-long', line: latin1(received.subarray(0, MAX_LINE_OCTETS))}
    // Waiting for an LF that such a server may never send would only burn the budget.
    if (cannotBeginReply(received)) return {kind: 'not-reply', line: latin1(received)}
    return {kind: 'more'}
  }
  const end = lf > 0 && received[lf - 1] === CR ? lf - 1 : lf
  if (end > MAX_LINE_OCTETS) return {kind: 'too-long', line: latin1(received.subarray(0, MAX_LINE_OCTETS))}
  return {kind: 'line', line: latin1(received.subarray(0, end))}
}

/** True once the first octets cannot begin a reply line; missing octets are completed with `220 `'s. */
export function cannotBeginReply(partial: Uint8Array): boolean {
  const start = latin1(partial.subarray(0, 4)).replace(/\r$/, '')
  return classifyGreeting(start + '220 '.slice(start.length)).kind === 'not-smtp'
}

/** The verdict on a complete first line. */
export function classifyGreeting(line: string): GreetingVerdict {
  const match = REPLY.exec(line)
  if (!match) return {kind: 'not-smtp', line, why: 'not an SMTP reply line'}
  const code = Number(match[1])
  if (code === 220) return {kind: 'available', final: match[2] !== '-', line}
  return {kind: 'rejected', code, text: line.slice(4), line}
}

function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1')
}

/** Escape control characters and cut to MAX_LINE_OCTETS, for traces. */
export function printable(text: string): string {
  return escapeControls(text.slice(0, MAX_LINE_OCTETS))
}
