// --mx property (SPEC §10, issue 11): random MX answers served by the DNS fixture over real
// UDP and read by the real DNS client (src/core/dns-client.ts); the entries that reach selection must equal a
// model written from SPEC §10 and §2 (not from src/core/mx.ts): sort by preference keeping
// DNS order for ties, drop `.` records, a lone `0 .` is a null MX, no record is the implicit
// MX, NXDOMAIN is no list, junk exchanges are skipped, the same host twice is one entry.
// In-process (lookupMx, many cases) and through the built binary (--json, fewer cases).
import fc from 'fast-check'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {createDnsClient} from '../src/core/dns-client.js'
import {lookupMx, mxResolver} from '../src/core/mx.js'
import {parseDnsServer} from '../src/core/grammar.js'
import {startDns} from '../fixtures/dns.js'
import {closedPort} from '../fixtures/smtp.js'
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
    words.push(`${r.prio}:${r.kind === 'lit6' ? `[${r.exchange}]` : r.exchange}`)
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
