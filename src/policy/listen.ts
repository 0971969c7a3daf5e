// `serve --listen` and `--socket-mode` values (SPEC §11). Pure: no socket.
import {UsageError} from '../core/errors.js'
import {hostPort, literalFamily, normalizeAddress} from '../core/grammar.js'

export type Listen = {readonly kind: 'inet'; readonly host: string; readonly port: number} | {readonly kind: 'unix'; readonly path: string}

/** The socket file mode when --socket-mode is not given: every local user may ask. */
export const DEFAULT_SOCKET_MODE = 0o666

/**
 * `inet:HOST:PORT` (HOST an IPv4 address or a bracketed IPv6 one: `inet:127.0.0.1:10040`,
 * `inet:[::1]:10040`; port 0 asks the kernel for a free one) or `unix:PATH` (absolute or
 * relative, like Postfix's own endpoint syntax).
 */
export function parseListen(text: string): Listen {
  const bad = (why: string) => new UsageError(`bad --listen "${text}": ${why}`)
  if (text.startsWith('unix:')) {
    const path = text.slice('unix:'.length)
    if (path === '') throw bad('empty socket path')
    if (path.includes('\0')) throw bad('NUL in socket path')
    return {kind: 'unix', path}
  }
  if (!text.startsWith('inet:')) throw bad('expected inet:HOST:PORT or unix:PATH')
  const rest = text.slice('inet:'.length)
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(rest)
  if (!match) throw bad('expected inet:ADDRESS:PORT, an IPv6 address in brackets')
  const host = match[1] ?? match[2]
  const family = literalFamily(host)
  if (family === 0 || (family === 6) !== (match[1] !== undefined)) throw bad('expected an IPv4 address or a bracketed IPv6 address')
  const port = Number(match[3])
  if (port > 65_535) throw bad('port must be from 0 to 65535')
  return {kind: 'inet', host: normalizeAddress(host), port}
}

/** `--socket-mode`: octal permission bits, `0666`, `660`, `0600`. */
export function parseSocketMode(text: string): number {
  if (!/^0?[0-7]{3}$/.test(text)) throw new UsageError(`bad --socket-mode "${text}": expected octal permission bits such as 0666 or 0660`)
  return Number.parseInt(text, 8)
}

/** How a listener is named in the log: `inet:127.0.0.1:10040`, `inet:[::1]:10040`, `unix:/run/x`. */
export function listenText(listen: Listen): string {
  if (listen.kind === 'unix') return `unix:${listen.path}`
  return `inet:${hostPort(listen.host, listen.port)}`
}
