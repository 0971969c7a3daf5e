// Name resolution (SPEC §7): the system resolver, or A and AAAA straight from --dns-server.
import type {DnsClient} from './dns-client.js'
import {OUT_OF_RESOURCES} from './errors.js'
import {canonicalName, familyOf, literalFamily, normalizeAddress} from './grammar.js'

export type LookupOutcome = 'resolved' | 'nxdomain' | 'no-address' | 'dns-error'

export interface Lookup {
  readonly outcome: LookupOutcome
  /** Normalised addresses, in the order they are to be tried. */
  readonly addresses: string[]
  /** Resolver error code or message when not resolved. */
  readonly error?: string
  /** Seconds DNS lets the answer be kept (the least TTL of its records); absent from /etc/hosts. */
  readonly ttl?: number
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

function found(addresses: string[], ttl?: number): Lookup {
  const list = unique(addresses)
  if (list.length === 0) return {outcome: 'no-address', addresses: []}
  return ttl === undefined ? {outcome: 'resolved', addresses: list} : {outcome: 'resolved', addresses: list, ttl}
}

/**
 * A and AAAA asked in parallel through the shared DNS client. The order tried is AAAA then A
 * (RFC 8305 prefers IPv6 first); each family keeps the server's order. A failure for a local
 * reason (EMFILE, …) keeps its code: check.ts must not read it as an answer (SPEC §3).
 */
export function dnsResolver(client: DnsClient): Resolver {
  return async (name, signal) => {
    const [v6, v4] = await Promise.allSettled([client.query(name, 'AAAA', signal), client.query(name, 'A', signal)])
    const answers = [v6, v4].flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []))
    const records = answers.flatMap((answer) => answer.records)
    if (records.length > 0) return found(records, Math.min(...answers.map((answer) => answer.ttl)))
    const errors = [v6, v4].map((result) => (result.status === 'rejected' ? failure(result.reason) : undefined))
    // NXDOMAIN from either query is final; otherwise an error wins over "no data", a local one first.
    return (
      errors.find((e) => e?.outcome === 'nxdomain') ??
      errors.find((e) => e?.outcome === 'dns-error' && OUT_OF_RESOURCES.has(e.error ?? '')) ??
      errors.find((e) => e?.outcome === 'dns-error') ??
      {outcome: 'no-address', addresses: []}
    )
  }
}

export const HOSTS_FILE = '/etc/hosts'

/**
 * The addresses /etc/hosts gives `name` (lower case, no trailing dot), IPv6 first, each family
 * in file order; lines that are not `address name…` are skipped, as the C library does.
 */
export function hostsAddresses(text: string, name: string): string[] {
  const v6: string[] = []
  const v4: string[] = []
  for (const line of text.split('\n')) {
    const [address, ...names] = line.replace(/#.*/, '').trim().split(/\s+/)
    if (!names.some((n) => canonicalName(n) === name)) continue
    if (literalFamily(address) === 0) continue
    const normal = normalizeAddress(address) // ::ffff:a.b.c.d is IPv4
    if (familyOf(normal) === 6) v6.push(normal)
    else v4.push(normal)
  }
  return [...v6, ...v4]
}

/**
 * The system resolver (SPEC §7), as nsswitch's `files dns`: /etc/hosts first, then `client`
 * (made without servers: /etc/resolv.conf's). Not getaddrinfo: its calls share libuv's four
 * threads, cannot be cancelled, and a hung one holds the process exit.
 */
export function systemResolver(client: DnsClient, hostsFile = HOSTS_FILE): Resolver {
  const dns = dnsResolver(client)
  return async (name, signal) => {
    const wanted = canonicalName(name)
    let hosts = ''
    try {
      hosts = await process.getBuiltinModule('node:fs/promises').readFile(hostsFile, 'latin1')
    } catch (error) {
      // No /etc/hosts: DNS alone, as the C library does; but a file this host could not open is no answer.
      const code = (error as NodeJS.ErrnoException).code ?? ''
      if (OUT_OF_RESOURCES.has(code)) return {outcome: 'dns-error', addresses: [], error: code}
    }
    const local = hostsAddresses(hosts, wanted)
    return local.length > 0 ? found(local) : dns(wanted, signal)
  }
}
