// Name resolution (SPEC §7): the system resolver, or A and AAAA straight from --dns-server.
import dns from 'node:dns'
import {hostPort, normalizeAddress, type HostPort} from './grammar.js'

export type LookupOutcome = 'resolved' | 'nxdomain' | 'no-address' | 'dns-error'

export interface Lookup {
  readonly outcome: LookupOutcome
  /** Normalised addresses, in the order they are to be tried. */
  readonly addresses: string[]
  /** Resolver error code or message when not resolved. */
  readonly error?: string
}

/** Resolves one name to all its A and AAAA addresses; never rejects. */
export type Resolver = (name: string, signal: AbortSignal) => Promise<Lookup>

const NXDOMAIN_CODES = new Set(['ENOTFOUND', 'NXDOMAIN'])
const NODATA_CODES = new Set(['ENODATA', 'ENONAME', 'EAI_NODATA'])

function failure(error: unknown): Lookup {
  const code = (error as NodeJS.ErrnoException)?.code ?? String(error)
  if (NXDOMAIN_CODES.has(code)) return {outcome: 'nxdomain', addresses: [], error: code}
  if (NODATA_CODES.has(code)) return {outcome: 'no-address', addresses: [], error: code}
  return {outcome: 'dns-error', addresses: [], error: code}
}

function unique(addresses: string[]): string[] {
  return [...new Set(addresses.map((address) => normalizeAddress(address)))]
}

function found(addresses: string[]): Lookup {
  const list = unique(addresses)
  return list.length > 0 ? {outcome: 'resolved', addresses: list} : {outcome: 'no-address', addresses: []}
}

/** getaddrinfo through dns.lookup: honours /etc/hosts and nsswitch, both families, system order. */
export const systemResolver: Resolver = async (name) => {
  try {
    const results = await dns.promises.lookup(name, {all: true, family: 0, order: 'verbatim'})
    return found(results.map((result) => result.address))
  } catch (error) {
    return failure(error)
  }
}

/** Per-query timeout of the --dns-server resolver; the server budget still bounds the whole lookup. */
const DNS_QUERY_TIMEOUT_MS = 2000
const DNS_TRIES = 2

/**
 * Ask one DNS server for A and AAAA in parallel. The order tried is AAAA then A (RFC 8305
 * prefers IPv6 first); each family keeps the server's order.
 */
export function dnsServerResolver(server: HostPort): Resolver {
  return async (name, signal) => {
    const resolver = new dns.promises.Resolver({timeout: DNS_QUERY_TIMEOUT_MS, tries: DNS_TRIES})
    resolver.setServers([hostPort(server.address, server.port)])
    const cancel = () => resolver.cancel()
    signal.addEventListener('abort', cancel, {once: true})
    try {
      const [v6, v4] = await Promise.allSettled([resolver.resolve6(name), resolver.resolve4(name)])
      const addresses = [v6, v4].flatMap((result) => (result.status === 'fulfilled' ? result.value : []))
      if (addresses.length > 0) return found(addresses)
      const errors = [v6, v4].map((result) => (result.status === 'rejected' ? failure(result.reason) : undefined))
      // NXDOMAIN from either query is final; otherwise an error wins over "no data".
      return (
        errors.find((e) => e?.outcome === 'nxdomain') ??
        errors.find((e) => e?.outcome === 'dns-error') ??
        {outcome: 'no-address', addresses: []}
      )
    } finally {
      signal.removeEventListener('abort', cancel)
    }
  }
}
