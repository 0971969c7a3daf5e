// What a run shows: the --verbose trace lines and the --json document (SPEC §6).
import type {Report, TraceEvent} from './check.js'
import {hostPort, type Entry} from './grammar.js'
import {printable} from './greeting.js'
import type {MxEvent, MxResult} from './mx.js'
import type {AttemptRecord} from './race.js'
import {LOCAL_NOT_FOUND} from './selection.js'

const word = (entry: Entry) => (entry.prio === undefined ? entry.name : `${entry.prio}:${entry.name}`)

function describeAttempt(record: AttemptRecord): string {
  const where = hostPort(record.address, record.port)
  if (record.outcome === 'cached') return `${where} cached ${record.cachedAs}`
  const took = `${record.endMs - record.startMs}ms`
  const line = record.line === undefined ? '' : ` "${printable(record.line)}"`
  const error = record.error ? ` (${record.error})` : ''
  return `${where} ${record.outcome}${line}${error} after ${took}`
}

/** The `+  Nms ` that begins every --verbose line: milliseconds since the run started. */
export const stamp = (ms: number) => `+${String(Math.round(ms)).padStart(3)}ms `

/** One trace line for --verbose, without the newline. */
export function formatEvent(event: TraceEvent): string {
  const at = stamp(event.ms)
  switch (event.type) {
    case 'entries':
      return at + (event.entries.length === 0 ? 'no servers given: no candidate' : `servers: ${event.entries.map(word).join(' ')}`)
    case 'stop':
      return at + `stop ${event.given}: ${event.addresses.join(' ')}`
    case 'lookup': {
      const {lookup} = event
      const what = lookup.outcome === 'resolved'
        ? `A/AAAA ${lookup.addresses.length} address${lookup.addresses.length === 1 ? '' : 'es'}: ${lookup.addresses.join(' ')}`
        : `lookup ${lookup.outcome}${lookup.error ? ` (${lookup.error})` : ''}`
      return at + `${event.host}: ${what} after ${lookup.endMs - lookup.startMs}ms`
    }
    case 'selection': {
      // The reason in full is in --json's selection.reason; the trace names the two sets.
      const {candidates, local, localNotFound} = event.selection
      const names = candidates.length > 0 ? candidates.map((e) => e.name).join(' ') : 'none'
      const where = local.length > 0 ? `; local host: ${local.map((e) => e.name).join(' ')}` : localNotFound ? ` (${LOCAL_NOT_FOUND}: nothing is known to be more preferred)` : ' (no entry is the local host)'
      return at + `candidates: ${names}${where}`
    }
    case 'attempt-start':
      return at + `${event.server}: connecting to ${hostPort(event.address, event.port)}`
    case 'attempt':
      return at + `${event.server}: ${describeAttempt(event.record)}`
    case 'server':
      return at + `${event.server}: ${event.available ? 'available' : 'unavailable'}${event.note ? ` (${event.note})` : ''}`
    case 'decision':
      return at + (event.winner !== undefined ? `${event.winner} is available: exit 1` : event.localNotFound ? `${LOCAL_NOT_FOUND}: exit 0` : 'no candidate is available: exit 0')
  }
}

const MX_OUTCOME: Record<MxResult['outcome'], string> = {
  mx: 'the MX records, in preference order',
  implicit: 'no MX record (NODATA): the implicit MX, the domain itself at preference 0',
  null: 'a null MX (RFC 7505): the domain takes no mail, no candidate',
  nxdomain: 'no such domain (NXDOMAIN): no candidate',
}

/** The --verbose lines of the MX lookup (--mx), without the final newline. */
export function formatMxEvent(event: MxEvent): string {
  const at = stamp(event.ms)
  const {domain, outcome, records, notes, startMs, endMs} = event.result
  const list = records.length > 0 ? `: ${records.map((r) => `${r.prio}:${printable(r.exchange)}`).join(' ')}` : ''
  const lines = [`MX ${domain}${list} after ${Math.round(endMs - startMs)}ms`, `MX ${domain}: ${MX_OUTCOME[outcome]}`, ...notes.map((note) => `MX ${domain}: ${note}`)]
  return lines.map((line) => at + line).join('\n')
}

/** The --json `mx` member: what --mx looked up, or null without --mx. */
function mxJson(mx: MxResult | undefined) {
  return mx ? {domain: mx.domain, outcome: mx.outcome, records: mx.records.map(({prio, exchange}) => ({prio, exchange: printable(exchange)}))} : null
}

/** The settings a run works with: --json's `options`, and the --verbose header line. */
export interface Settings {
  readonly port: number
  /** Seconds; 0 = no limit. */
  readonly timeout: number
  readonly family: 4 | 6 | null
  /** `system`, or the --dns-server as `address:port`. */
  readonly resolver: string
  readonly attemptDelayMs: number
  readonly sequential: boolean
  /** The cache file, or null when the cache is off. */
  readonly cache: string | null
  /** Seconds an outcome is believed: unavailable (negative) and available (positive). */
  readonly ttls: {readonly negative: number; readonly positive: number}
}

/** The --verbose header: one line with the settings in force, without the newline. */
export function formatSettings(s: Settings, cacheOff?: string): string {
  const family = s.family === null ? 'IPv4 and IPv6' : `IPv${s.family} only`
  const cache = s.cache === null ? `no cache (${cacheOff ?? '--no-cache'})` : `cache ${s.cache} (TTLs ${s.ttls.negative}s unavailable, ${s.ttls.positive}s available)`
  const order = s.sequential ? 'one server at a time' : 'all at once'
  return `${stamp(0)}settings: port ${s.port}, timeout ${s.timeout === 0 ? 'none' : `${s.timeout}s`}, ${family}, ${order}, next address after ${s.attemptDelayMs}ms, resolver ${s.resolver}, ${cache}`
}

/**
 * Why a run decided as it did, in words (serve's decision line, the library's `reason`);
 * `probed` is false when DNS and selection alone decided (nothing was probed).
 */
export function reasonOf(report: Report, mx?: MxResult): {reason: string; probed: boolean} {
  if (report.winner) return {reason: 'available', probed: true}
  if (mx?.outcome === 'null') return {reason: 'null MX', probed: false}
  if (mx?.outcome === 'nxdomain') return {reason: 'no such domain', probed: false}
  if (report.selection.localNotFound) return {reason: `${LOCAL_NOT_FOUND} (no identity of this host is listed)`, probed: false}
  if (report.selection.candidates.length === 0) return {reason: 'no more preferred MX', probed: false}
  return {reason: `no more preferred MX is up (${report.selection.candidates.length} tried)`, probed: true}
}

/** --json's `probed`: a connection was attempted (a cached outcome, a lookup that ran out, a family with no address are not). */
const connected = (server: {attempts: readonly AttemptRecord[]} | undefined) => server?.attempts.some((a) => a.outcome !== 'cached') ?? false

/** --json's `decision.reason`: why the run exits as it does, in a few fixed words. */
function decisionReason(report: Report): string {
  if (report.winner) return 'a candidate is available'
  if (report.selection.localNotFound) return LOCAL_NOT_FOUND
  return report.selection.candidates.length === 0 ? 'no candidate' : 'no candidate is available'
}

/** The --json document; its schema is docs/report.schema.json (test/report.test.ts holds every document to it). */
export function toJson(report: Report, mx?: MxResult, settings?: Settings) {
  const candidates = new Set(report.selection.candidates)
  const local = new Set(report.selection.local)
  const probed = new Map(report.servers.map((server) => [server.entry, server]))
  return {
    ...(settings ? {options: settings} : {}),
    mx: mxJson(mx),
    stop: report.stops,
    entries: report.entries.map((entry) => {
      const server = probed.get(entry)
      const lookup = report.lookups.get(entry)
      return {
        name: entry.name,
        host: entry.host,
        kind: entry.kind,
        prio: entry.prio ?? null,
        local: local.has(entry),
        candidate: candidates.has(entry),
        lookup: lookup
          ? {outcome: lookup.outcome, addresses: lookup.addresses, error: lookup.error ?? null, startMs: lookup.startMs, endMs: lookup.endMs}
          : null,
        probed: connected(server),
        addresses: server?.addresses ?? [],
        available: server ? server.available : null,
        note: server?.note ?? null,
        attempts: (server?.attempts ?? []).map((a) => ({
          address: a.address,
          port: a.port,
          outcome: a.outcome,
          cachedAs: a.cachedAs ?? null,
          code: a.code ?? null,
          line: a.line === undefined ? null : printable(a.line),
          error: a.error ?? null,
          startMs: a.startMs,
          endMs: a.endMs,
        })),
      }
    }),
    selection: {reason: report.selection.reason, candidates: report.selection.candidates.map((e) => e.name), local: report.selection.local.map((e) => e.name)},
    decision: {server: report.winner?.name ?? null, exitCode: report.exitCode, elapsedMs: report.elapsedMs, reason: decisionReason(report)},
  }
}
