// A policy client for the tests: real sockets to the server, bounded in time.
import net from 'node:net'

export interface Talk {
  /** Everything the server sent (latin1). */
  readonly text: string
  /** How the connection ended: FIN, RST/error, or still open when the limit came. */
  readonly end: 'eof' | 'reset' | 'open'
  readonly ms: number
}

export type Target = {host: string; port: number} | {path: string}

/** Clients connect from 127.0.12.2 (this branch's loopback range), or `address`, to an IPv4 target. */
function from(target: Target, address = '127.0.12.2'): Target & {localAddress?: string} {
  return 'host' in target && target.host.startsWith('127.') ? {...target, localAddress: address} : target
}

/** A request as Postfix sends it at RCPT time (more attributes may be added or replaced). */
export function rcpt(recipient: string, extra: Record<string, string> = {}): string {
  const attributes = {request: 'smtpd_access_policy', protocol_state: 'RCPT', protocol_name: 'ESMTP', client_address: '192.0.2.9', sender: 's@x.example', recipient, ...extra}
  return Object.entries(attributes).map(([k, v]) => `${k}=${v}\n`).join('') + '\n'
}

export const DEFER = (server: string) => `action=DEFER_IF_PERMIT 4.7.1 Please use server ${server}\n\n`
export const DUNNO = 'action=DUNNO\n\n'

/**
 * Connect (from `from`, a loopback address), send `data` (half-closing after it, Exim style,
 * unless `halfClose` is false) and read until the server ends the connection, `until(text)`
 * holds, or `limitMs` passes.
 */
export function talk(target: Target, data: string | Buffer, options: {halfClose?: boolean; limitMs?: number; until?: (text: string) => boolean; from?: string} = {}): Promise<Talk> {
  const started = performance.now()
  return new Promise((resolve) => {
    const socket = net.connect({...from(target, options.from), allowHalfOpen: true})
    let text = ''
    let settled = false
    const finish = (end: Talk['end']) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      resolve({text, end, ms: performance.now() - started})
    }
    const timer = setTimeout(() => finish('open'), options.limitMs ?? 5000)
    socket.on('connect', () => {
      if (options.halfClose === false) socket.write(data)
      else socket.end(data)
    })
    socket.on('data', (chunk) => {
      text += chunk.toString('latin1')
      if (options.until?.(text)) finish('open')
    })
    socket.on('end', () => finish('eof'))
    socket.on('error', () => finish('reset'))
    socket.on('close', () => finish('eof'))
  })
}

/** Open a connection and keep it; resolves once connected (or closed at once: `closed`). */
export function hold(target: Target): Promise<{socket: net.Socket; closed: Promise<number>}> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(from(target))
    const opened = performance.now()
    const closed = new Promise<number>((r) => socket.once('close', () => r(performance.now() - opened)))
    socket.on('error', () => {})
    socket.once('connect', () => resolve({socket, closed}))
    socket.once('close', () => reject(new Error('closed before connecting')))
  })
}
