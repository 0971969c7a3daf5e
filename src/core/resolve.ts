// Name resolution (SPEC §7): the system resolver, or A and AAAA straight from --dns-server.
import type dns from 'node:dns'

import {canonicalName, familyOf, hostPort, literalFamily, normalizeAddress, type HostPort} from './grammar.js'

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
 * A new c-ares resolver. node:dns is loaded at the first lookup, not at start-up (about a
 * millisecond that a run resolving no name, or answered from /etc/hosts, does not pay).
 */
export function newResolver(timeoutMs: number, tries: number): dns.promises.Resolver {
  return new (process.getBuiltinModule('node:dns').promises.Resolver)({timeout: timeoutMs, tries})
}

/** Per-query timeout of the c-ares resolvers; the server budget still bounds the whole lookup. */
const DNS_QUERY_TIMEOUT_MS = 2000
const DNS_TRIES = 2

/**
 * Ask A and AAAA in parallel through one c-ares resolver (cancellable, no thread pool). The
 * order tried is AAAA then A (RFC 8305 prefers IPv6 first); each family keeps the server's order.
 */
async function resolveBoth(resolver: dns.promises.Resolver, name: string, signal: AbortSignal): Promise<Lookup> {
  const cancel = () => resolver.cancel()
  if (signal.aborted) return failure('cancelled')
  signal.addEventListener('abort', cancel, {once: true})
  try {
    const [v6, v4] = await Promise.allSettled([resolver.resolve6(name, {ttl: true}), resolver.resolve4(name, {ttl: true})])
    const records = [v6, v4].flatMap((result) => (result.status === 'fulfilled' ? result.value : []))
    if (records.length > 0) return found(records.map((r) => r.address), Math.min(...records.map((r) => r.ttl)))
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

/** Ask one DNS server (--dns-server) for A and AAAA. */
export function dnsServerResolver(server: HostPort): Resolver {
  return (name, signal) => {
    const resolver = newResolver(DNS_QUERY_TIMEOUT_MS, DNS_TRIES)
    resolver.setServers([hostPort(server.address, server.port)])
    return resolveBoth(resolver, name, signal)
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
 * The system resolver (SPEC §7), as nsswitch's `files dns`: /etc/hosts first, then the
 * name servers of /etc/resolv.conf through c-ares. Not getaddrinfo: its calls share libuv's
 * four threads, cannot be cancelled, and a hung one holds the process exit.
 */
export const systemResolver: Resolver = async (name, signal) => {
  const wanted = canonicalName(name)
  let hosts = ''
  try {
    hosts = await process.getBuiltinModule('node:fs/promises').readFile(HOSTS_FILE, 'latin1')
  } catch {
    // No /etc/hosts: DNS alone, as the C library does.
  }
  const local = hostsAddresses(hosts, wanted)
  if (local.length > 0) return found(local)
  return resolveBoth(newResolver(DNS_QUERY_TIMEOUT_MS, DNS_TRIES), wanted, signal)
}
