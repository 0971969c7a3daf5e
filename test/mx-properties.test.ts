// --mx property (SPEC §10, issue 11): random MX answers served by the DNS fixture over real
// UDP and read by the real DNS client (src/core/dns-client.ts); the entries that reach selection must equal a
// model written from SPEC §10 and §2 (not from src/core/mx.ts): sort by preference keeping
// DNS order for ties, drop `.` records, a lone `0 .` is a null MX, no record is the implicit
// MX, NXDOMAIN is no list, junk exchanges are skipped, the same host twice is one entry.
// In-process (lookupMx, many cases) and through the built binary (--json, fewer cases).
import fc from 'fast-check'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {attemptSmtp} from '../src/core/attempt.js'
import {createChecker} from '../src/core/checker.js'
import {createDnsClient} from '../src/core/dns-client.js'
import {lookupMx, mxResolver} from '../src/core/mx.js'
import {parseDnsServer, parseStop} from '../src/core/grammar.js'
import {dnsResolver} from '../src/core/resolve.js'
import {startDns} from '../fixtures/dns.js'
import {closedPort, startSmtp} from '../fixtures/smtp.js'
import {runCli} from './cli.js'

type Kind = 'name' | 'dot' | 'lit4' | 'lit6' | 'junk'
interface Rec {prio: number; kind: Kind; exchange: string}
type Answer = {type: 'nxdomain'} | {type: 'records'; records: Rec[]}

/** A few names so that duplicates (also differing in case) are common. */
const NAMES = ['mx1.test', 'MX1.test', 'mx2.test', 'mx3.example.test', 'a-b.test']
/** Exchanges the §2 grammar refuses, as DNS can carry them. */
const JUNK = ['under_score.test', 'sp ace.test', 'ctl\x01.test', 'mx.123', '-h.test', 'h-.test', 'b\u00fc.test', 'quo"te.test']
const LITERALS4 = ['127.0.13.201', '127.0.13.202']

const rec: fc.Arbitrary<Rec> = fc.tuple(
  fc.oneof(fc.integer({min: 0, max: 3}), fc.integer({min: 0, max: 65_535})),
  fc.oneof(
    {weight: 4, arbitrary: fc.constantFrom(...NAMES).map((exchange) => ({kind: 'name' as const, exchange}))},
    {weight: 1, arbitrary: fc.constant({kind: 'dot' as const, exchange: '.'})},
    {weight: 1, arbitrary: fc.constantFrom(...LITERALS4).map((exchange) => ({kind: 'lit4' as const, exchange}))},
    {weight: 1, arbitrary: fc.constant({kind: 'lit6' as const, exchange: '::1'})},
    {weight: 1, arbitrary: fc.constantFrom(...JUNK).map((exchange) => ({kind: 'junk' as const, exchange}))},
  ),
).map(([prio, e]) => ({prio, ...e}))
const answer: fc.Arbitrary<Answer> = fc.oneof(
  {weight: 1, arbitrary: fc.constant({type: 'nxdomain' as const})},
  {weight: 1, arbitrary: fc.constant({type: 'records' as const, records: []})},
  {weight: 1, arbitrary: fc.constant({type: 'records' as const, records: [{prio: 0, kind: 'dot' as const, exchange: '.'}]})},
  {weight: 8, arbitrary: fc.array(rec, {maxLength: 8}).map((records) => ({type: 'records' as const, records}))},
  // Records none of which is usable (`.` among others, junk): rare among the arrays above
  // (about 8 in 300 cases, so a run could reach the branch fewer than 5 times), so drawn here too.
  {weight: 1, arbitrary: fc.array(rec.filter((r) => r.kind === 'dot' || r.kind === 'junk'), {minLength: 2, maxLength: 4}).map((records) => ({type: 'records' as const, records}))},
)

/** SPEC §10 as a table of cases, written out: the `prio:name` words that reach selection. */
function model(domain: string, a: Answer): string[] {
  if (a.type === 'nxdomain') return []
  if (a.records.length === 0) return [`0:${domain}`]
  if (a.records.length === 1 && a.records[0].prio === 0 && a.records[0].kind === 'dot') return []
  // Insertion sort: a record moves before another only when its preference is strictly lower.
  const sorted: Rec[] = []
  for (const r of a.records.filter((r) => r.kind !== 'dot' && r.kind !== 'junk')) {
    let i = sorted.length
    while (i > 0 && sorted[i - 1].prio > r.prio) i--
    sorted.splice(i, 0, r)
  }
  const seen = new Set<string>()
  const words: string[] = []
  for (const r of sorted) {
    const key = r.exchange.toLowerCase()
    if (seen.has(key)) continue
    seen.add(key)
    words.push(`${r.prio}:${r.exchange}`) // an IPv6 literal too: printed as the record has it
  }
  return words
}

/** Which branches a case reaches (counted so that each is shown to be exercised). */
function branches(a: Answer): string[] {
  if (a.type === 'nxdomain') return ['nxdomain']
  const r = a.records
  if (r.length === 0) return ['implicit']
  if (r.length === 1 && r[0].prio === 0 && r[0].kind === 'dot') return ['null']
  const hit = ['mx']
  if (r.some((x) => x.kind === 'dot')) hit.push('dot among others')
  if (r.some((x) => x.kind === 'junk')) hit.push('junk skipped')
  if (r.some((x) => x.kind === 'lit4' || x.kind === 'lit6')) hit.push('literal')
  if (new Set(r.map((x) => x.exchange.toLowerCase())).size < r.length) hit.push('duplicate')
  if (r.some((x, i) => r.some((y, j) => i < j && x.prio === y.prio && x.exchange.toLowerCase() !== y.exchange.toLowerCase() && x.kind !== 'dot' && y.kind !== 'dot'))) hit.push('tie')
  if (r.some((x, i) => i > 0 && x.prio < r[i - 1].prio)) hit.push('unsorted')
  if (r.every((x) => x.kind === 'dot' || x.kind === 'junk')) hit.push('nothing usable')
  return hit
}

const BRANCHES = ['nxdomain', 'implicit', 'null', 'mx', 'dot among others', 'junk skipped', 'literal', 'duplicate', 'tie', 'unsorted', 'nothing usable']

describe('--mx: the entries reaching selection equal the SPEC §10 model', () => {
  const zone: Record<string, {MX?: Array<[number, string]>; A?: string[]}> = {}
  let dns: Awaited<ReturnType<typeof startDns>>
  let serial = 0
  /** Serve `a` under a fresh domain (no resolver cache can mix cases up). */
  const serve = (a: Answer) => {
    const domain = `case${serial++}.test`
    if (a.type === 'records') zone[domain] = {MX: a.records.map((r) => [r.prio, r.exchange])}
    return domain
  }
  beforeAll(async () => {
    dns = await startDns(zone, {host: '127.0.13.53'})
  })
  afterAll(async () => dns?.close())

  it('in-process through the DNS client: every generated answer, and every branch reached', async () => {
    const counts = Object.fromEntries(BRANCHES.map((b) => [b, 0]))
    const client = createDnsClient({servers: [parseDnsServer(dns.address)]})
    const resolveMx = mxResolver(client)
    await fc.assert(
      fc.asyncProperty(answer, async (a) => {
        const domain = serve(a)
        for (const b of branches(a)) counts[b]++
        const result = await lookupMx(domain, {resolveMx, timeoutMs: 5000, now: () => performance.now()})
        expect(result.entries.map((e) => `${e.prio}:${e.name}`)).toEqual(model(domain, a))
        expect(result.outcome).toBe(branches(a)[0])
      }),
      {numRuns: 300},
    )
    await client.close()
    for (const b of BRANCHES) expect(counts[b], `${b} reached ${counts[b]} times`).toBeGreaterThanOrEqual(5)
  }, 60_000)

  it('through the binary (--json entries): a sample of answers', async () => {
    const port = await closedPort('127.0.13.201')
    await fc.assert(
      fc.asyncProperty(answer, async (a) => {
        const domain = serve(a)
        const r = await runCli(['--no-cache', '--json', '--timeout', '2', '--port', String(port), '--dns-server', dns.address, '--mx', domain])
        expect(r.stderr).toBe('')
        expect(r.status).toBe(0)
        const doc = JSON.parse(r.stdout)
        expect(doc.entries.map((e: {prio: number; name: string}) => `${e.prio}:${e.name}`)).toEqual(model(domain, a))
      }),
      {numRuns: 25},
    )
  }, 60_000)
})

// ---- Identities and the not-found rule (SPEC §3, §10; issue 18): generated MX lists in
// which this host appears by its public address (NAT), by the address it sees itself at, by
// the name given to --stop, under its own name that fails to resolve, or not at all; the
// verdict must equal a table written from the SPEC. Real DNS (fixture), real probes.

type Role = 'nat' | 'priv' | 'ownname' | 'servfail' | 'nxdomain' | 'silent' | 'up' | 'down'
type Identity = 'private' | 'public' | 'name'
interface Scenario {records: Array<{prio: number; role: Role}>; identities: Identity[]}

const PRIV = '127.20.5.92'
const PUB = '127.20.5.93'
const UP = '127.20.5.10'
const DOWN = '127.20.5.11'
const SELF = 'self.ids.test'

const scenario: fc.Arbitrary<Scenario> = fc.record({
  records: fc.array(fc.record({
    prio: fc.integer({min: 0, max: 3}),
    role: fc.oneof(
      {weight: 5, arbitrary: fc.constantFrom<Role>('nat', 'priv', 'ownname')},
      {weight: 2, arbitrary: fc.constantFrom<Role>('servfail', 'nxdomain')},
      {weight: 1, arbitrary: fc.constant<Role>('silent')},
      {weight: 6, arbitrary: fc.constantFrom<Role>('up', 'down')},
    ),
  }), {minLength: 1, maxLength: 5}),
  // The NAT mistake (only the private address given) and its fix (the private address and
  // the public one or the name) weighted up so that both are common: fc.subarray favours
  // short subsets, and drew the fix about 4 times in 200 cases in some runs.
  identities: fc.oneof(
    {weight: 2, arbitrary: fc.constant<Identity[]>(['private'])},
    {weight: 1, arbitrary: fc.constantFrom<Identity[]>(['private', 'public'], ['private', 'name'], ['private', 'public', 'name'])},
    {weight: 3, arbitrary: fc.subarray<Identity>(['private', 'public', 'name'])},
  ),
})

/** The exchange of record j of a case (each its own name, except this host's shared name). */
const exchangeOf = (domain: string, role: Role, j: number) => (role === 'ownname' ? SELF : `${role}${j}.${domain}`)

/** SPEC §3/§10 as a table: the names that may be printed (exit 1), or [] for exit 0. */
function expectedWinners(domain: string, s: Scenario): string[] {
  const stopAddresses = new Set([...(s.identities.includes('private') ? [PRIV] : []), ...(s.identities.includes('public') || s.identities.includes('name') ? [PUB] : [])])
  // §2: the same host twice is one entry, at its lowest priority; the list is in preference order.
  const byName = new Map<string, {prio: number; role: Role}>()
  for (const [j, r] of s.records.entries()) {
    const name = exchangeOf(domain, r.role, j)
    const seen = byName.get(name)
    if (!seen || r.prio < seen.prio) byName.set(name, {prio: r.prio, role: r.role})
  }
  const entries = [...byName].map(([name, r]) => {
    const address = r.role === 'nat' || r.role === 'ownname' ? PUB : r.role === 'priv' ? PRIV : undefined
    // "An entry is the local host when its host equals a stop name or any of its resolved addresses equals any stop address."
    const local = (s.identities.includes('name') && name === SELF) || (address !== undefined && stopAddresses.has(address))
    return {name, prio: r.prio, role: r.role, local}
  })
  const locals = entries.filter((e) => e.local)
  if (locals.length === 0) return s.identities.length > 0 ? [] : entries.filter((e) => e.role === 'up').map((e) => e.name)
  const P = Math.min(...locals.map((e) => e.prio))
  return entries.filter((e) => !e.local && e.prio < P && e.role === 'up').map((e) => e.name)
}

/** Which branches a scenario reaches (each must be generated). */
function scenarioBranches(domain: string, s: Scenario): string[] {
  const hit: string[] = []
  const roles = new Set(s.records.map((r) => r.role))
  const winners = expectedWinners(domain, s)
  if (s.identities.length === 0) hit.push('no identity')
  else if (expectedWinners(domain, {...s, identities: []}).length > 0 && winners.length === 0) hit.push('accept where "every MX" would defer')
  if (roles.has('nat') && s.identities.includes('private') && !s.identities.includes('public') && !s.identities.includes('name')) hit.push('NAT, public identity not given')
  if (roles.has('nat') && s.identities.includes('private') && s.identities.length > 1) hit.push('NAT, both identities')
  if ([...roles].some((r) => r === 'servfail' || r === 'nxdomain' || r === 'silent') && s.identities.length > 0) hit.push('own name unresolvable')
  if (roles.has('ownname') && s.identities.includes('name')) hit.push('found by name')
  hit.push(winners.length > 0 ? 'defer' : 'accept')
  return hit
}

const SCENARIO_BRANCHES = ['no identity', 'accept where "every MX" would defer', 'NAT, public identity not given', 'NAT, both identities', 'own name unresolvable', 'found by name', 'defer', 'accept']

describe('identities and the not-found rule: generated MX lists against the SPEC §3/§10 table', () => {
  const zone: Record<string, {MX?: Array<[number, string]>; A?: string[]; servfail?: boolean; nxdomain?: boolean; silent?: boolean}> = {[SELF]: {A: [PUB]}}
  let dns: Awaited<ReturnType<typeof startDns>>
  let up: Awaited<ReturnType<typeof startSmtp>>
  let serial = 0
  const serveCase = (s: Scenario) => {
    const domain = `ids${serial++}.test`
    zone[domain] = {MX: s.records.map((r, j) => [r.prio, exchangeOf(domain, r.role, j)])}
    for (const [j, r] of s.records.entries()) {
      const name = exchangeOf(domain, r.role, j)
      if (r.role === 'nat') zone[name] = {A: [PUB]}
      else if (r.role === 'priv') zone[name] = {A: [PRIV]}
      else if (r.role === 'up') zone[name] = {A: [UP]}
      else if (r.role === 'down') zone[name] = {A: [DOWN]}
      else if (r.role === 'servfail') zone[name] = {servfail: true}
      else if (r.role === 'nxdomain') zone[name] = {nxdomain: true}
      else if (r.role === 'silent') zone[name] = {silent: true}
    }
    return domain
  }
  const stopsOf = (s: Scenario) => s.identities.map((id) => (id === 'private' ? PRIV : id === 'public' ? PUB : SELF))
  beforeAll(async () => {
    dns = await startDns(zone, {host: '127.20.5.53'})
    up = await startSmtp({host: UP, greeting: '220 up\r\n'})
  })
  afterAll(async () => {
    await dns?.close()
    await up?.close()
  })

  it('in-process (the checker --mx and serve share): every generated list, every branch reached', async () => {
    const counts = Object.fromEntries(SCENARIO_BRANCHES.map((b) => [b, 0]))
    const client = createDnsClient({servers: [parseDnsServer(dns.address)]})
    const checker = createChecker({timeoutMs: 800, port: up.port, attemptDelayMs: 250, sequential: false}, {resolver: dnsResolver(client), resolveMx: mxResolver(client), attempt: attemptSmtp, now: () => performance.now()})
    await fc.assert(
      fc.asyncProperty(scenario, async (s) => {
        const domain = serveCase(s)
        for (const b of scenarioBranches(domain, s)) counts[b]++
        const {report} = await checker.check({list: {mx: domain}, stops: stopsOf(s).map((text) => parseStop(text))})
        const winners = expectedWinners(domain, s)
        if (winners.length === 0) expect(report.winner?.name, JSON.stringify(s)).toBeUndefined()
        else expect(winners, JSON.stringify(s)).toContain(report.winner?.name)
        expect(report.selection.localNotFound ?? false).toBe(s.identities.length > 0 && report.selection.local.length === 0)
      }),
      {numRuns: 300}, // every branch about 15 times or more (each must be reached 5 times)
    ).finally(() => client.close())
    for (const b of SCENARIO_BRANCHES) expect(counts[b], `${b} reached ${counts[b]} times`).toBeGreaterThanOrEqual(5)
  }, 120_000)

  it('through the binary (--stop repeated, --mx): a sample of lists', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async (s) => {
        const domain = serveCase(s)
        const r = await runCli(['--no-cache', '--timeout', '1', '--port', String(up.port), '--dns-server', dns.address, ...stopsOf(s).flatMap((x) => ['--stop', x]), '--mx', domain])
        const winners = expectedWinners(domain, s)
        expect(r.stderr, JSON.stringify(s)).toBe('')
        if (winners.length === 0) expect([r.stdout, r.status], JSON.stringify(s)).toEqual(['', 0])
        else expect([winners.map((w) => `${w}\n`), r.status], JSON.stringify(s)).toEqual([expect.arrayContaining([r.stdout]), 1])
      }),
      {numRuns: 15},
    )
  }, 120_000)
})
