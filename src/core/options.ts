// The probe options' values and their rules (SPEC §2, §5), in one place for the command line
// (src/cli/run.ts, from flag text), serve, and the library (./library.ts, from numbers): a
// value is checked by the grammar's rule for its flag, so a bad one is the same UsageError.
import type {Ttls} from './cache.js'
import {DEFAULT_NEGATIVE_TTL} from './cache.js'
import type {CheckOptions} from './check.js'
import {createDnsClient, type DnsClient} from './dns-client.js'
import {UsageError} from './errors.js'
import {MAX_TIMER_SECONDS, parseDnsServer, parseInteger, parseSeconds, type HostPort} from './grammar.js'
import {mxResolver, type ResolveMx} from './mx.js'
import {DEFAULT_ATTEMPT_DELAY_MS} from './race.js'
import {dnsResolver, systemResolver, type Resolver} from './resolve.js'

export const DEFAULT_TIMEOUT_S = 10
export const DEFAULT_PORT = 25
/** serve's (and a long-lived checker's) positive TTL (SPEC §11): a busy secondary does not probe its primary per recipient. */
export const SERVE_POSITIVE_TTL = 30

/** A value as the command line gives it (text) or a program does (a number). */
type Value = string | number | undefined

export interface ProbeValues {
  readonly timeout?: Value
  readonly port?: Value
  readonly attemptDelay?: Value
  readonly family?: 4 | 6
}

/** --timeout, --port, --attempt-delay, -4/-6 → the probe settings; a bad value is a UsageError. */
export function probeSettings(values: ProbeValues): Omit<CheckOptions, 'entries' | 'stop' | 'sequential'> {
  const {family} = values
  if (family !== undefined && family !== 4 && family !== 6) throw new UsageError(`bad family ${String(family)}: expected 4 or 6`)
  return {
    timeoutMs: 1000 * (values.timeout === undefined ? DEFAULT_TIMEOUT_S : parseSeconds('timeout', String(values.timeout), MAX_TIMER_SECONDS)),
    port: values.port === undefined ? DEFAULT_PORT : parseInteger('port', String(values.port), 1, 65_535),
    attemptDelayMs: values.attemptDelay === undefined ? DEFAULT_ATTEMPT_DELAY_MS : parseInteger('attempt-delay', String(values.attemptDelay), 0, 60_000),
    family,
  }
}

/** --negative-ttl, --positive-ttl (whose default differs: 0 for the command, 30 for serve). */
export function ttlsFrom(values: {negativeTtl?: Value; positiveTtl?: Value}, positiveDefault: number): Ttls {
  return {
    negative: values.negativeTtl === undefined ? DEFAULT_NEGATIVE_TTL : parseSeconds('negative-ttl', String(values.negativeTtl)),
    positive: values.positiveTtl === undefined ? positiveDefault : parseSeconds('positive-ttl', String(values.positiveTtl)),
  }
}

/**
 * --dns-server → one DNS client (that server, or /etc/resolv.conf's) and the A/AAAA and MX
 * resolvers over it; the system resolver reads /etc/hosts first. Nothing is opened before the
 * first query, nor loaded unless `longLived` (serve, a library checker); `client.close()` ends it.
 */
export function dnsFrom(dnsServer: string | undefined, longLived = false): {client: DnsClient; resolver: Resolver; resolveMx: ResolveMx; dnsServer?: HostPort} {
  const server = dnsServer === undefined ? undefined : parseDnsServer(dnsServer)
  const client = createDnsClient({servers: server && [server], preload: longLived})
  return {client, resolver: server === undefined ? systemResolver(client) : dnsResolver(client), resolveMx: mxResolver(client), dnsServer: server}
}
