// One connection attempt to one address: connect, read the first greeting line, leave politely.
import type net from 'node:net'
import {MAX_LINE_OCTETS, classifyGreeting, scanFirstLine} from './greeting.js'

export type AttemptOutcome =
  | 'available'
  | 'rejected'
  | 'not-smtp'
  | 'closed'
  | 'refused'
  | 'unreachable'
  | 'connect-timeout'
  | 'greeting-timeout'
  | 'cancelled'
  | 'cached'

/** Why an attempt was torn down from outside: the budget ran out, or another attempt won. */
export type AbortReason = 'timeout' | 'cancelled'

export interface AttemptResult {
  readonly outcome: AttemptOutcome
  /** The server's first line (latin1, without line ending), when one was read. */
  readonly line?: string
  /** Reply code of a `rejected` greeting. */
  readonly code?: number
  /** Socket error code (ECONNREFUSED, …) when the attempt failed on one. */
  readonly error?: string
}

/** Tries one address; never rejects; resolves as soon as the outcome is known. */
export type AttemptFn = (address: string, port: number, signal: AbortSignal) => Promise<AttemptResult>

const QUIT = 'QUIT\r\n'
/** Room for one maximal line with its CR LF: the most ever buffered per connection. */
const BUFFER_OCTETS = MAX_LINE_OCTETS + 2
/** How long a QUIT may take to flush before the socket is destroyed anyway. */
const QUIT_FLUSH_MS = 1000

const REFUSED = new Set(['ECONNREFUSED'])
const CLOSED = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED'])
const TIMED_OUT = new Set(['ETIMEDOUT'])

function errorOutcome(code: string | undefined, connected: boolean): AttemptOutcome {
  if (connected) return 'closed'
  if (code && REFUSED.has(code)) return 'refused'
  if (code && CLOSED.has(code)) return 'closed'
  if (code && TIMED_OUT.has(code)) return 'connect-timeout'
  return 'unreachable'
}

/** Leave after a final `220 `: send QUIT, half-close, and drop the socket once flushed. */
function quit(socket: net.Socket): void {
  socket.pause()
  socket.removeAllListeners('data')
  const timer = setTimeout(() => socket.destroy(), QUIT_FLUSH_MS)
  timer.unref()
  socket.on('close', () => clearTimeout(timer))
  socket.end(QUIT, () => socket.destroy())
}

export const attemptSmtp: AttemptFn = (address, port, signal) =>
  new Promise((resolve) => {
    const received = Buffer.alloc(BUFFER_OCTETS)
    let length = 0
    let connected = false
    let settled = false
    // node:net is loaded at the first probe, not at start: most runs of the command probe nothing.
    const socket = process.getBuiltinModule('node:net').connect({host: address, port, noDelay: true})

    const finish = (result: AttemptResult, leave: (s: net.Socket) => void = (s) => s.destroy()) => {
      if (settled) return
      settled = true
      signal.removeEventListener('abort', onAbort)
      socket.removeAllListeners('error')
      socket.on('error', () => {})
      leave(socket)
      resolve(result)
    }
    const onAbort = () => {
      const reason = signal.reason as AbortReason
      finish({outcome: reason === 'cancelled' ? 'cancelled' : connected ? 'greeting-timeout' : 'connect-timeout'})
    }
    if (signal.aborted) return onAbort()
    signal.addEventListener('abort', onAbort, {once: true})

    socket.once('connect', () => {
      connected = true
    })
    socket.on('data', (chunk: Buffer) => {
      const take = Math.min(chunk.length, BUFFER_OCTETS - length)
      chunk.copy(received, length, 0, take)
      length += take
      const scan = scanFirstLine(received.subarray(0, length))
      if (scan.kind === 'more') return
      if (scan.kind === 'not-reply') return finish({outcome: 'not-smtp', line: scan.line})
      if (scan.kind === 'too-long') return finish({outcome: 'not-smtp', line: scan.line, error: 'line too long'})
      const verdict = classifyGreeting(scan.line)
      if (verdict.kind === 'available') return finish({outcome: 'available', line: verdict.line}, verdict.final ? quit : undefined)
      if (verdict.kind === 'rejected') return finish({outcome: 'rejected', line: verdict.line, code: verdict.code})
      finish({outcome: 'not-smtp', line: verdict.line})
    })
    socket.on('end', () => finish({outcome: 'closed'}))
    socket.on('close', () => finish({outcome: 'closed'}))
    socket.on('error', (error: NodeJS.ErrnoException) => finish({outcome: errorOutcome(error.code, connected), error: error.code}))
  })
