// --mx DOMAIN (SPEC §10): the MX list from DNS by the rules of RFC 5321 §5.1 and RFC 7505.
// No module-level state: `serve` calls lookupMx once per request with a shared resolver.
import {domainToASCII} from 'node:url'

import type {DnsClient} from './dns-client.js'
import {FatalError, OUT_OF_RESOURCES, outOfResources, quote, UsageError} from './errors.js'
import {canonicalName, dotted, hostnameProblem, literalFamily, parseServerList, parseServerWord, type Entry} from './grammar.js'
import {printable} from './greeting.js'

/** One MX record as DNS gave it; `exchange` is `.` for the root (a null MX's target). */
export interface MxRecord {
  readonly prio: number
  readonly exchange: string
}

/** mx: records; implicit: NODATA (the domain itself, preference 0); null: RFC 7505; nxdomain: no such domain. */
export type MxOutcome = 'mx' | 'implicit' | 'null' | 'nxdomain'

export interface MxResult {
  /** The domain asked for: ASCII (punycode), lower case, no trailing dot. */
  readonly domain: string
  readonly outcome: MxOutcome
  /** Every record, in preference order (equal preferences in DNS order). */
  readonly records: MxRecord[]
  /** The list that reaches selection, as if given as `prio:exchange` words. */
  readonly entries: Entry[]
  /** What --verbose says about records skipped or taken as address literals. */
  readonly notes: string[]
  readonly startMs: number
  readonly endMs: number
}

/** A name's MX records as DNS gave them (owner checked, in DNS order), and how long they may be kept. */
export interface MxAnswer {
  readonly records: ReadonlyArray<{priority: number; exchange: string}>
  /** Seconds: the least TTL of the records used (CNAMEs included). */
  readonly ttl: number
}

/** Asks DNS for a name's MX records; rejects with an error whose `code` is the resolver's (dns-client.ts DnsError). */
export type ResolveMx = (name: string, signal: AbortSignal) => Promise<MxAnswer>

export type MxEvent = {type: 'mx'; ms: number; result: MxResult}

export interface MxDeps {
  readonly resolveMx: ResolveMx
  /** The lookup's own budget in ms; 0 = no limit (the resolver's own timeouts still end it). */
  readonly timeoutMs: number
  /** Monotonic milliseconds. */
  readonly now: () => number
  /** The run's start on `now`'s clock: the event's `ms` counts from it (default: the lookup's start). */
  readonly startMs?: number
  readonly signal?: AbortSignal
  readonly onEvent?: (event: MxEvent) => void
}

/**
 * The `--mx` value: a host name (§2 grammar, trailing dot allowed), a Unicode name converted
 * to punycode first (WHATWG domainToASCII, which also lower-cases). An address literal, or
 * anything that is not a host name before or after conversion, is a usage error.
 */
export function parseMxDomain(text: string): string {
  const bad = (why: string) => new UsageError(`bad --mx ${quote(text)}: ${why}`)
  const literal = (t: string) => literalFamily(t.replace(/^\[(.*)\]$/, '$1')) !== 0 || dotted(t)
  if (text === '') throw bad('empty domain')
  if (literal(text)) throw bad('an address literal, not a domain')
  // An ASCII word gets the grammar's reason; then punycode labels (xn--) are checked too.
  const problem = /^[\x00-\x7f]*$/.test(text) ? hostnameProblem(text) : undefined
  if (problem) throw bad(problem)
  const ascii = domainToASCII(text)
  if (ascii === '') throw bad('not a valid internationalized domain name')
  if (literal(ascii)) throw bad('an address literal, not a domain')
  const converted = hostnameProblem(ascii)
  if (converted) throw bad(`${converted} (as ${ascii})`)
  return canonicalName(ascii)
}

/** Records in preference order; Array.prototype.sort is stable, so equal preferences keep DNS order. */
export function sortRecords(answers: ReadonlyArray<{priority: number; exchange: string}>): MxRecord[] {
  return answers.map((a) => ({prio: a.priority, exchange: a.exchange === '' ? '.' : a.exchange})).sort((a, b) => a.prio - b.prio)
}

/**
 * The server list of an answer (RFC 5321 §5.1, RFC 7505): `.` records are dropped (one `0 .`
 * alone is a null MX: no list); each exchange is a `prio:exchange` word through the §2
 * grammar (an IPv6 literal bracketed, printed without); an exchange the grammar refuses is skipped with a
 * note — DNS data is never a usage error; the same host twice is one entry (§2).
 */
export function mxEntries(records: readonly MxRecord[]): {entries: Entry[]; notes: string[]} {
  const words: string[] = []
  const notes: string[] = []
  for (const {prio, exchange} of records) {
    if (exchange === '.') continue
    const family = literalFamily(exchange)
    const word = family === 6 ? `${prio}:[${exchange}]` : `${prio}:${exchange}`
    try {
      parseServerWord(word)
      words.push(word)
      if (family !== 0) notes.push(`exchange ${exchange} is an address literal (RFC 5321 forbids it): probed as that address`)
    } catch (error) {
      if (!(error instanceof UsageError)) throw error
      notes.push(`exchange "${printable(exchange)}" skipped: ${printable(error.message.replace(/^bad server "[^]*?": /, ''))}`)
    }
  }
  // An IPv6 exchange goes through the grammar bracketed (`prio:[addr]`) but is printed as the record has it (SPEC §10).
  const entries = parseServerList(words).map((entry) => (entry.kind === 'ipv6' ? {...entry, name: entry.name.replace(/^\[(.*)\]$/, '$1')} : entry))
  return {entries, notes}
}

/** What an answer means: the outcome and its entries (implicit MX: the domain itself at 0). */
function classify(domain: string, answers: ReadonlyArray<{priority: number; exchange: string}> | 'nxdomain' | 'nodata') {
  if (answers === 'nxdomain') return {outcome: 'nxdomain' as const, records: [], entries: [], notes: []}
  if (answers === 'nodata' || answers.length === 0) {
    return {outcome: 'implicit' as const, records: [], entries: parseServerList([`0:${domain}`]), notes: []}
  }
  const records = sortRecords(answers)
  if (records.length === 1 && records[0].prio === 0 && records[0].exchange === '.') {
    return {outcome: 'null' as const, records, entries: [], notes: []}
  }
  return {outcome: 'mx' as const, records, ...mxEntries(records)}
}

/** The code of a lookup ended by its budget (the DNS client's own timeout is ETIMEOUT). */
const BUDGET_RAN_OUT = 'budget'
const NXDOMAIN_CODES = new Set(['ENOTFOUND', 'NXDOMAIN'])
const NODATA_CODES = new Set(['ENODATA'])

/**
 * Look DOMAIN's MX records up within their own budget. NXDOMAIN and NODATA are answers; any
 * other failure (SERVFAIL, REFUSED, no answer within the budget, …) is a FatalError naming
 * DOMAIN and the error: smtpdcheck cannot know the list (exit 2).
 */
export async function lookupMx(domain: string, deps: MxDeps): Promise<MxResult> {
  const startMs = deps.now()
  const controller = new AbortController()
  const onParent = () => controller.abort(deps.signal?.reason)
  deps.signal?.addEventListener('abort', onParent, {once: true})
  if (deps.signal?.aborted) onParent()
  let timer: NodeJS.Timeout | undefined
  let settled = false
  const expired = new Promise<never>((_, reject) => {
    // Once the answer is in, the abort below only ends the lookup: no error (an Error costs a stack trace).
    const onAbort = () => settled || reject(Object.assign(new Error('cancelled'), {code: controller.signal.reason === 'timeout' ? BUDGET_RAN_OUT : 'ECANCELLED'}))
    if (controller.signal.aborted) onAbort()
    controller.signal.addEventListener('abort', onAbort, {once: true})
    if (deps.timeoutMs > 0) timer = setTimeout(() => controller.abort('timeout'), deps.timeoutMs)
  })
  let answer: Parameters<typeof classify>[1]
  try {
    answer = (await Promise.race([deps.resolveMx(domain, controller.signal), expired])).records
  } catch (error) {
    const code = (error as NodeJS.ErrnoException)?.code ?? String(error)
    if (NXDOMAIN_CODES.has(code)) answer = 'nxdomain'
    else if (NODATA_CODES.has(code)) answer = 'nodata'
    else if (OUT_OF_RESOURCES.has(code)) throw new FatalError(`system error: cannot look up the MX records of "${domain}": ${outOfResources(code)}`)
    else throw new FatalError(`cannot look up the MX records of "${domain}": ${describeDnsError(code, deps.timeoutMs)}`, 'mx-lookup')
  } finally {
    settled = true
    clearTimeout(timer)
    deps.signal?.removeEventListener('abort', onParent)
    controller.abort('cancelled')
  }
  const result: MxResult = {domain, ...classify(domain, answer), startMs, endMs: deps.now()}
  deps.onEvent?.({type: 'mx', ms: Math.round(result.endMs - (deps.startMs ?? startMs)), result})
  return result
}

/** A resolver error code in words, the code kept for the log. */
function describeDnsError(code: string, timeoutMs: number): string {
  const words: Record<string, string> = {
    ESERVFAIL: 'server failure (SERVFAIL)',
    EREFUSED: 'query refused (REFUSED)',
    [BUDGET_RAN_OUT]: `no answer within --timeout ${timeoutMs / 1000} s (ETIMEOUT)`,
    ETIMEOUT: 'no answer from the DNS server (ETIMEOUT)',
    ECONNREFUSED: 'DNS server unreachable (ECONNREFUSED)',
    ECANCELLED: 'cancelled (ECANCELLED)',
  }
  return words[code] ?? `DNS error (${printable(code)})`
}

/** The MX resolver: `client`'s MX query, records with their TTL. */
export function mxResolver(client: DnsClient): ResolveMx {
  return async (name, signal) => {
    const answer = await client.query(name, 'MX', signal)
    return {records: answer.records.map((record) => ({priority: record.preference, exchange: record.exchange})), ttl: answer.ttl}
  }
}
