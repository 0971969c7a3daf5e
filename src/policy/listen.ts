// `serve --listen` and `--socket-mode` values (SPEC §11). Pure: no socket.
import {FatalError, quote, UsageError} from '../core/errors.js'
import {canonicalName, hostnameProblem, hostPort, literalFamily, normalizeAddress} from '../core/grammar.js'

/** An inet endpoint's host is an address, or a name (`named`) that resolveListen turns into its addresses. */
export type Listen = {readonly kind: 'inet'; readonly host: string; readonly port: number; readonly named?: boolean} | {readonly kind: 'unix'; readonly path: string}

/** The socket file mode when --socket-mode is not given: every local user may ask. */
export const DEFAULT_SOCKET_MODE = 0o666

/**
 * `inet:HOST:PORT` (HOST an IPv4 address, a bracketed IPv6 one or a host name:
 * `inet:127.0.0.1:10040`, `inet:[::1]:10040`, `inet:localhost:10040`, as Postfix writes
 * them; port 0 asks the kernel for a free one) or `unix:PATH` (absolute or relative, like
 * Postfix's own endpoint syntax).
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
  const port = Number(match[3])
  if (port > 65_535) throw bad('port must be from 0 to 65535')
  const family = literalFamily(host)
  if (family === 0 && match[1] === undefined && !/^[\d.]+$/.test(host) && hostnameProblem(canonicalName(host)) === undefined) return {kind: 'inet', host: canonicalName(host), port, named: true}
  if (family === 0 || (family === 6) !== (match[1] !== undefined)) throw bad('expected an IPv4 address, a bracketed IPv6 address or a host name')
  return {kind: 'inet', host: normalizeAddress(host), port}
}

/**
 * Endpoints with a host name → one per address of the name (A and AAAA, /etc/hosts first:
 * the system's getaddrinfo, as Postfix does for `inet:localhost:10040`), at start-up only.
 * A name without an address is a FatalError (exit 2).
 */
export async function resolveListen(listen: readonly Listen[]): Promise<Listen[]> {
  const {lookup} = await import('node:dns/promises')
  const out: Listen[] = []
  for (const endpoint of listen) {
    if (endpoint.kind !== 'inet' || !endpoint.named) {
      out.push(endpoint)
      continue
    }
    const addresses = await lookup(endpoint.host, {all: true, verbatim: true}).catch((error: NodeJS.ErrnoException) => {
      throw new FatalError(`cannot resolve ${quote(endpoint.host)} in ${listenText(endpoint)}: ${error.code ?? error.message}`)
    })
    const unique = [...new Set(addresses.map((a) => normalizeAddress(a.address)))]
    if (unique.length === 0) throw new FatalError(`cannot resolve ${quote(endpoint.host)} in ${listenText(endpoint)}: no address`)
    for (const host of unique) out.push({kind: 'inet', host, port: endpoint.port})
  }
  return out
}

/** `--socket-mode`: octal permission bits, `0666`, `660`, `0600`. */
export function parseSocketMode(text: string): number {
  if (!/^0?[0-7]{3}$/.test(text)) throw new UsageError(`bad --socket-mode "${text}": expected octal permission bits such as 0666 or 0660`)
  return Number.parseInt(text, 8)
}

/** How a listener is named in the log: `inet:127.0.0.1:10040`, `inet:[::1]:10040`, `unix:/run/x`. */
export function listenText(listen: Listen): string {
  if (listen.kind === 'unix') return `unix:${listen.path}`
  return listen.named ? `inet:${listen.host}:${listen.port}` : `inet:${hostPort(listen.host, listen.port)}`
}
