// Resolution (SPEC §7) against the loopback DNS fixture, directly, through check() with the
// real attempt function, and through the built binary with --dns-server.
import {beforeAll, afterAll, describe, expect, it} from 'vitest'

import {attemptSmtp} from '../../src/core/attempt.js'
import {check} from '../../src/core/check.js'
import {parseServerList} from '../../src/core/grammar.js'
import {createDnsClient, type DnsClient} from '../../src/core/dns-client.js'
import {dnsResolver, hostsAddresses, systemResolver} from '../../src/core/resolve.js'
import {startDns} from '../../fixtures/dns.js'
import {startSmtp, until} from '../../fixtures/smtp.js'
import {runCli} from '../cli.js'
import {closedAfterEach} from '../fixtures.js'

const ZONE = {
  // The dead addresses come first in each family; only 127.0.0.3 listens (on the SMTP port).
  'multi.test': {A: ['127.0.0.2', '127.0.0.3'], AAAA: ['::1']},
  'v4only.test': {A: ['127.0.0.4', '127.0.0.5']},
  'v6only.test': {AAAA: ['::1']},
  'nodata.test': {},
  'nx.test': {nxdomain: true},
  'servfail.test': {servfail: true},
  'silent.test': {silent: true},
}

let dns: Awaited<ReturnType<typeof startDns>>
let dns6: Awaited<ReturnType<typeof startDns>>
/** One DNS client per server, as a run or serve has. */
let client: DnsClient
let client6: DnsClient
beforeAll(async () => {
  dns = await startDns(ZONE)
  dns6 = await startDns(ZONE, {host: '::1'})
  client = createDnsClient({servers: [{address: '127.0.0.1', port: dns.port}]})
  client6 = createDnsClient({servers: [{address: '::1', port: dns6.port}]})
})
afterAll(async () => {
  await client.close()
  await client6.close()
  await dns.close()
  await dns6.close()
})

const keep = closedAfterEach()
/** The one address of multi.test that listens. */
const third = () => keep(startSmtp({host: '127.0.0.3', greeting: '220 third\r\n'}))

const resolve = (name: string, signal = new AbortController().signal) => dnsResolver(client)(name, signal)

describe('dnsResolver (--dns-server)', () => {
  it('returns every A and AAAA address, AAAA first, each family in the server order', async () => {
    expect(await resolve('multi.test')).toEqual({outcome: 'resolved', addresses: ['::1', '127.0.0.2', '127.0.0.3'], ttl: 60})
    expect(await resolve('MULTI.TEST.')).toEqual({outcome: 'resolved', addresses: ['::1', '127.0.0.2', '127.0.0.3'], ttl: 60})
  })

  it('asks both families', async () => {
    dns.queries.length = 0
    await resolve('v4only.test')
    expect(dns.queries.map((q) => q.type).sort()).toEqual(['A', 'AAAA'])
  })

  it('one family only', async () => {
    expect(await resolve('v4only.test')).toEqual({outcome: 'resolved', addresses: ['127.0.0.4', '127.0.0.5'], ttl: 60})
    expect(await resolve('v6only.test')).toEqual({outcome: 'resolved', addresses: ['::1'], ttl: 60})
  })

  it('works with a DNS server on ::1', async () => {
    const r = await dnsResolver(client6)('multi.test', new AbortController().signal)
    expect(r.addresses).toEqual(['::1', '127.0.0.2', '127.0.0.3'])
  })

  it('NXDOMAIN', async () => {
    expect(await resolve('nx.test')).toMatchObject({outcome: 'nxdomain', addresses: []})
    expect(await resolve('unknown.test')).toMatchObject({outcome: 'nxdomain', addresses: []})
  })

  it('no data', async () => {
    expect(await resolve('nodata.test')).toMatchObject({outcome: 'no-address', addresses: []})
  })

  it('SERVFAIL is a dns-error', async () => {
    expect(await resolve('servfail.test')).toMatchObject({outcome: 'dns-error', addresses: []})
  })

  it('a silent server: aborting the lookup ends it at once as a dns-error', async () => {
    const started = performance.now()
    const r = await resolve('silent.test', AbortSignal.timeout(300))
    const ms = performance.now() - started
    expect(r).toMatchObject({outcome: 'dns-error', addresses: []})
    expect(ms).toBeGreaterThanOrEqual(250)
    // Unaborted, the resolver gives up only after about 7 s (2 tries, 2 s timeout, backoff).
    expect(ms).toBeLessThan(3500)
  })
})

describe('systemResolver', () => {
  it('resolves localhost (from /etc/hosts) to loopback addresses', async () => {
    const system = createDnsClient()
    const r = await systemResolver(system)('localhost', new AbortController().signal)
    await system.close()
    expect(r.outcome).toBe('resolved')
    expect(r.addresses.length).toBeGreaterThan(0)
    for (const address of r.addresses) expect(['127.0.0.1', '::1']).toContain(address)
  })
})

describe('hostsAddresses (the /etc/hosts part of the system resolver)', () => {
  const text = [
    '# comment 192.0.2.9 mx.test',
    '127.0.0.1\tlocalhost',
    '192.0.2.1  MX.test mx-alias   # trailing comment mx.other',
    '::ffff:192.0.2.2 mx.test',
    '2001:DB8::1 mx.test.',
    'fe80::1%eth0 mx.test',
    '0x7f.0.0.1 mx.test',
    'not-an-address mx.test',
    '192.0.2.3',
    '192.0.2.4 mx.test',
  ].join('\n')
  it.each([
    ['mx.test', ['2001:db8::1', '192.0.2.1', '192.0.2.2', '192.0.2.4']], // IPv6 first, each family in file order
    ['mx-alias', ['192.0.2.1']],
    ['localhost', ['127.0.0.1']],
    ['mx.other', []], // only in a comment
    ['192.0.2.3', []], // an address is not a name
  ])('%s', (name, want) => {
    expect(hostsAddresses(text, name)).toEqual(want)
  })
})

describe('through check() with real sockets', () => {
  it('the dead addresses are tried, then the one that answers wins', async () => {
    const smtp = await third()
    const report = await check(
      {entries: parseServerList(['multi.test']), timeoutMs: 15_000, port: smtp.port, attemptDelayMs: 5000, sequential: false},
      {resolver: dnsResolver(client), attempt: attemptSmtp, now: () => performance.now()},
    )
    expect(report.winner?.name).toBe('multi.test')
    expect(report.servers[0].attempts.map((a) => [a.address, a.outcome])).toEqual([
      ['::1', 'refused'],
      ['127.0.0.2', 'refused'],
      ['127.0.0.3', 'available'],
    ])
    // Refusals answer at once: the 5 s attempt delay is never waited out.
    expect(report.elapsedMs).toBeLessThan(4000)
  })

  it('a silent name is unavailable (dns-error) when the budget runs out', async () => {
    const report = await check(
      {entries: parseServerList(['silent.test']), timeoutMs: 400, port: 25, attemptDelayMs: 250, sequential: false},
      {resolver: dnsResolver(client), attempt: attemptSmtp, now: () => performance.now()},
    )
    expect(report.exitCode).toBe(0)
    expect(report.lookups.get(report.servers[0].entry)?.outcome).toBe('dns-error')
    expect(report.servers[0].attempts).toEqual([])
    expect(report.elapsedMs).toBeLessThan(3500)
  })
})

describe('the binary with --dns-server', () => {
  const run = (args: string[]) => runCli(['--no-cache', '--dns-server', dns.address, ...args])

  it('a name whose first addresses are dead is available through a later one', async () => {
    const smtp = await third()
    const r = await run(['--port', String(smtp.port), '10:multi.test'])
    expect([r.stdout, r.stderr, r.status]).toEqual(['multi.test\n', '', 1])
    await until(() => smtp.connections.length === 1 && smtp.connections[0].closed)
    expect(smtp.sent()).toEqual(['QUIT\r\n'])
  })

  it.each(['nx.test', 'nodata.test', 'servfail.test'])('%s is unavailable, not an error: exit 0', async (name) => {
    const r = await run(['--port', '25', `10:${name}`])
    expect([r.stdout, r.stderr, r.status]).toEqual(['', '', 0])
  })

  it('a silent name is unavailable once the budget runs out', async () => {
    const r = await run(['--timeout', '0.5', 'silent.test'])
    expect([r.stdout, r.stderr, r.status]).toEqual(['', '', 0])
    // Without the budget the lookup alone would take about 7 s.
    expect(r.ms).toBeLessThan(6000)
  })

  it('the same over a DNS server on [::1]:PORT', async () => {
    const smtp = await third()
    const r = await runCli(['--no-cache', '--dns-server', dns6.address, '--port', String(smtp.port), 'multi.test'])
    expect([r.stdout, r.stderr, r.status]).toEqual(['multi.test\n', '', 1])
  })
})
