// --verbose and --json (SPEC §6): trace lines, the JSON document against
// docs/report.schema.json, and stdout/exit status unchanged — in-process and through the binary.
import {describe, expect, it} from 'vitest'

import {attemptSmtp} from '../src/core/attempt.js'
import {MemoryCache} from '../src/core/cache.js'
import {check, type TraceEvent} from '../src/core/check.js'
import {parseDnsServer, parseServerList} from '../src/core/grammar.js'
import {formatEvent, toJson} from '../src/core/report.js'
import {createDnsClient} from '../src/core/dns-client.js'
import {dnsResolver} from '../src/core/resolve.js'
import {startDns} from '../fixtures/dns.js'
import {closedPort, startSmtp} from '../fixtures/smtp.js'
import {runCli} from './cli.js'
import {closedAfterEach} from './fixtures.js'
import {validate} from './schema.js'


const keep = closedAfterEach()

/** Fixtures behind one port: mx.test greets (its ::1 is silent), bad.test rejects with control characters, nx.test does not exist. */
async function world() {
  const silent = await keep(startSmtp({host: '::1'}))
  const port = silent.port
  await keep(startSmtp({host: '127.0.0.111', port, greeting: '220 mx.test ESMTP\r\n'}))
  await keep(startSmtp({host: '127.0.0.112', port, greeting: '554 no\x1b[31m thanks\x07\r\n'}))
  const dns = await keep(startDns({'mx.test': {AAAA: ['::1'], A: ['127.0.0.111']}, 'bad.test': {A: ['127.0.0.112']}}))
  return {port, dns: dns.address}
}

describe('the JSON schema and its validator', () => {
  const good = {
    mx: null,
    stop: [],
    entries: [{name: 'a.test', host: 'a.test', kind: 'name', prio: 10, local: false, candidate: true, probed: true, available: false, note: null,
      lookup: {outcome: 'resolved', addresses: ['127.0.0.1'], error: null, startMs: 0, endMs: 2}, addresses: ['127.0.0.1'],
      attempts: [{address: '127.0.0.1', port: 25, outcome: 'rejected', cachedAs: null, code: 554, line: '554 no', error: null, startMs: 2, endMs: 3}]}],
    selection: {reason: 'r', candidates: ['a.test'], local: []},
    decision: {server: null, exitCode: 0, elapsedMs: 4, reason: 'no candidate is available'},
  }
  it('accepts a well-formed document', () => {
    expect(validate(good)).toEqual([])
  })
  it('rejects missing fields, unknown fields, wrong types, enums and ranges', () => {
    const bad = structuredClone(good) as any
    delete bad.decision.exitCode
    bad.selection.extra = 1
    bad.entries[0].attempts[0].outcome = 'timeout'
    bad.entries[0].attempts[0].port = 0
    bad.entries[0].prio = '10'
    bad.entries[0].lookup.startMs = 1.5
    expect(validate(bad).sort()).toEqual([
      '$.decision: missing exitCode',
      '$.entries[0].attempts[0].outcome: "timeout" not in enum',
      '$.entries[0].attempts[0].port: below 1',
      '$.entries[0].lookup.startMs: number is not integer',
      '$.entries[0].prio: string is not integer|null',
      '$.selection: unexpected extra',
    ])
  })
})

describe('--json', () => {
  it('every document of a varied in-process run matches the schema', async () => {
    const {port, dns} = await world()
    const refused = await closedPort('127.0.0.113')
    const runs = [
      {words: ['10:bad.test', '20:mx.test', '30:nx.test', '127.0.0.113'], stops: []},
      {words: ['10:bad.test', '20:mx.test', '30:127.0.0.111'], stops: [{name: 'mx.test'}]},
      {words: ['127.0.0.113', '[::1]'], stops: [], port: refused},
      {words: [], stops: []},
      {words: ['10:bad.test', '20:mx.test', '127.0.0.113'], stops: [], sequential: true}, // cached now
    ]
    const cache = new MemoryCache({negative: 60, positive: 60})
    const outcomes = new Set<string>()
    const client = createDnsClient({servers: [parseDnsServer(dns)]})
    for (const r of runs) {
      const report = await check(
        {entries: parseServerList(r.words), stops: r.stops, timeoutMs: 2000, port: r.port ?? port, attemptDelayMs: 100, sequential: r.sequential ?? false},
        {resolver: dnsResolver(client), attempt: attemptSmtp, now: () => performance.now(), cache},
      )
      const json = toJson(report)
      expect(validate(json)).toEqual([])
      expect(json.entries.map((e) => e.name)).toEqual(report.entries.map((e) => e.name))
      for (const e of json.entries) for (const a of e.attempts) outcomes.add(a.outcome)
    }
    await client.close()
    expect([...outcomes].sort()).toEqual(['available', 'cached', 'cancelled', 'refused', 'rejected'])
  })

  it('through the binary: valid, same exit status as without --json, escaped server text', async () => {
    const {port, dns} = await world()
    const base = ['--no-cache', '--port', String(port), '--dns-server', dns]
    for (const words of [['10:bad.test', '20:mx.test'], ['bad.test', 'nx.test']]) {
      const [plain, json] = await Promise.all([runCli([...base, ...words]), runCli([...base, '--json', ...words])])
      expect(json.status).toBe(plain.status)
      expect(json.stderr).toBe('')
      const doc = JSON.parse(json.stdout)
      expect(validate(doc)).toEqual([])
      expect(doc.decision.exitCode).toBe(plain.status)
      expect(doc.decision.server === null ? '' : `${doc.decision.server}\n`).toBe(plain.stdout)
      const rejected = doc.entries.find((e: any) => e.name === 'bad.test').attempts[0]
      expect(rejected).toMatchObject({outcome: 'rejected', code: 554, line: '554 no\\x1b[31m thanks\\x07'})
    }
  })
})

describe('--verbose', () => {
  it('formats events as "+  Nms what", with control characters of server text escaped', () => {
    const lookup = {outcome: 'resolved', addresses: ['127.0.0.1', '::1'], startMs: 1, endMs: 3} as const
    expect(formatEvent({type: 'lookup', ms: 3, host: 'mx1.example.org', lookup})).toBe('+  3ms mx1.example.org: A/AAAA 2 addresses: 127.0.0.1 ::1 after 2ms')
    const record = {address: '127.0.0.22', port: 25, outcome: 'available', line: '220 mx\tESMTP\r\u0000', startMs: 250, endMs: 254} as const
    expect(formatEvent({type: 'attempt', ms: 254, server: 'mx1.example.org', record})).toBe(
      '+254ms mx1.example.org: 127.0.0.22:25 available "220 mx\\tESMTP\\r\\x00" after 4ms',
    )
    const event: TraceEvent = {type: 'decision', ms: 12_345, winner: undefined, exitCode: 0}
    expect(formatEvent(event)).toBe('+12345ms no candidate is available: exit 0')
  })

  it('leaves stdout and the exit status unchanged; the trace covers lookups, attempts and the decision', async () => {
    const {port, dns} = await world()
    const base = ['--no-cache', '--port', String(port), '--dns-server', dns, '--attempt-delay', '100']
    for (const words of [['10:bad.test', '20:mx.test', '30:nx.test'], ['bad.test', 'nx.test']]) {
      const [plain, verbose] = await Promise.all([runCli([...base, ...words]), runCli([...base, '--verbose', ...words])])
      expect([verbose.stdout, verbose.status]).toEqual([plain.stdout, plain.status])
      expect(plain.stderr).toBe('')
      const lines = verbose.stderr.trimEnd().split('\n')
      for (const line of lines) expect(line).toMatch(/^\+ {0,2}\d+ms \S/)
      expect(verbose.stderr).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f]/) // nothing raw from the server
      expect(verbose.stderr).toContain('bad.test: 127.0.0.112:' + port + ' rejected "554 no\\x1b[31m thanks\\x07"')
      expect(verbose.stderr).toMatch(/nx\.test: lookup nxdomain/)
      expect(lines.at(-1)).toMatch(plain.status === 1 ? /mx\.test is available: exit 1$/ : /no candidate is available: exit 0$/)
    }
  })

  it('--mx: every outcome gives a valid document with the mx member; --verbose lines in the same style, stdout unchanged', async () => {
    const {port, dns} = await world()
    const zone = await keep(startDns({
      'list.test': {MX: [[20, 'nx.test'], [10, '127.0.0.111'], [30, 'bad_name\x07.test'], [40, '.']]},
      'nodata.test': {A: ['127.0.0.112']},
      'null.test': {MX: [[0, '.']]},
    }, {host: '127.0.13.54'}))
    const base = ['--no-cache', '--port', String(port), '--dns-server', zone.address]
    const outcomes = []
    for (const domain of ['list.test', 'nodata.test', 'null.test', 'nosuch.test']) {
      const [plain, json, verbose] = await Promise.all([runCli([...base, '--mx', domain]), runCli([...base, '--json', '--mx', domain]), runCli([...base, '--verbose', '--mx', domain])])
      const doc = JSON.parse(json.stdout)
      expect(validate(doc)).toEqual([])
      outcomes.push(doc.mx.outcome)
      expect([json.status, verbose.status, verbose.stdout]).toEqual([plain.status, plain.status, plain.stdout])
      for (const line of verbose.stderr.trimEnd().split('\n')) expect(line).toMatch(/^\+ {0,2}\d+ms \S/)
      expect(verbose.stderr).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f]/)
      expect(verbose.stderr).toMatch(new RegExp(`^\\+ {0,2}0ms settings: [^\\n]*\\n\\+ {0,2}\\d+ms MX ${domain.replace('.', '\\.')}`))
    }
    expect(outcomes).toEqual(['mx', 'implicit', 'null', 'nxdomain'])
    const list = JSON.parse((await runCli([...base, '--json', '--mx', 'list.test'])).stdout)
    expect(list.mx.records).toEqual([{prio: 10, exchange: '127.0.0.111'}, {prio: 20, exchange: 'nx.test'}, {prio: 30, exchange: 'bad_name\\\\007.test'}, {prio: 40, exchange: '.'}])
    // Without --mx the member is there, null.
    expect(JSON.parse((await runCli([...base, '--json', '127.0.0.111'])).stdout).mx).toBeNull()
  })

  it('an empty server list: no candidate, exit 0, and --verbose says so', async () => {
    const r = await runCli(['--no-cache', '--verbose'])
    expect([r.stdout, r.status]).toEqual(['', 0])
    expect(r.stderr).toMatch(/no servers given: no candidate/)
  })
})
