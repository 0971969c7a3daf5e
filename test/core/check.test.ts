// check(): all servers at once (SPEC §5), --sequential, -4/-6 (§2), the outcome of every
// attempt and lookup (§6), with real loopback sockets and a loopback DNS server.
import {spawn} from 'node:child_process'
import {once} from 'node:events'
import {describe, expect, it} from 'vitest'

import {attemptSmtp} from '../../src/core/attempt.js'
import {MemoryCache} from '../../src/core/cache.js'
import {check, type CheckOptions, type Report} from '../../src/core/check.js'
import {parseDnsServer, parseServerList} from '../../src/core/grammar.js'
import {createDnsClient} from '../../src/core/dns-client.js'
import {dnsResolver, systemResolver, type Lookup} from '../../src/core/resolve.js'
import {startDns} from '../../fixtures/dns.js'
import {runTimed} from '../../fixtures/spawn.js'
import {closedPort, startBlackhole, startSmtp, until} from '../../fixtures/smtp.js'
import {BIN, runCli} from '../cli.js'
import {closedAfterEach} from '../fixtures.js'

const keep = closedAfterEach()

type Run = Partial<Omit<CheckOptions, 'entries'>> & {dns?: string; cache?: MemoryCache}
/** check() in-process with the real attempt; timeout 10 s unless given. */
async function run(words: string[], {dns, cache, ...options}: Run = {}): Promise<Report> {
  const client = await keep(Promise.resolve(createDnsClient(dns ? {servers: [parseDnsServer(dns)]} : {})))
  return check(
    {entries: parseServerList(words), timeoutMs: 10_000, port: 25, attemptDelayMs: 250, sequential: false, ...options},
    {
      resolver: dns ? dnsResolver(client) : systemResolver(client),
      attempt: attemptSmtp,
      now: () => performance.now(),
      cache,
    },
  )
}
const server = (report: Report, name: string) => report.servers.find((s) => s.entry.name === name)
const outcome = (report: Report, name: string) => server(report, name)?.attempts.map((a) => a.outcome)

describe('all candidates at once (SPEC §5)', () => {
  it('a dead (blackholed) primary does not delay a live secondary; --sequential waits the primary out', async () => {
    const dead = await keep(startBlackhole('127.0.0.71'))
    const live = await keep(startSmtp({host: '127.0.0.72', port: dead.port, greeting: '220 backup\r\n'}))
    const words = ['10:127.0.0.71', '20:127.0.0.72']
    const fast = await run(words, {port: dead.port, timeoutMs: 2000})
    expect(fast.winner?.name).toBe('127.0.0.72')
    expect(fast.elapsedMs).toBeLessThan(1000) // the budget is 2 s
    expect(outcome(fast, '127.0.0.71')).toEqual(['cancelled'])

    const slow = await run(words, {port: dead.port, timeoutMs: 2000, sequential: true})
    expect(slow.winner?.name).toBe('127.0.0.72')
    expect(slow.elapsedMs).toBeGreaterThanOrEqual(1950)
    expect(outcome(slow, '127.0.0.71')).toEqual(['connect-timeout'])
  })

  it('the binary answers the same way: default at once, --sequential --timeout 2 after the budget', async () => {
    const dead = await keep(startBlackhole('127.0.0.73'))
    const live = await keep(startSmtp({host: '127.0.0.74', port: dead.port, greeting: '220 backup\r\n'}))
    const args = ['--no-cache', '--port', String(live.port), '--timeout', '2', '10:127.0.0.73', '20:127.0.0.74']
    const [fast, slow] = await Promise.all([runCli(args), runCli(['--sequential', ...args])])
    expect([fast.stdout, fast.status, fast.stderr]).toEqual(['127.0.0.74\n', 1, ''])
    expect([slow.stdout, slow.status, slow.stderr]).toEqual(['127.0.0.74\n', 1, ''])
    expect(slow.ms).toBeGreaterThanOrEqual(2000)
    expect(fast.ms).toBeLessThan(slow.ms - 1000)
  })

  it('prints the first candidate to answer; --sequential prints the first available in list order', async () => {
    const late = await keep(startSmtp({host: '127.0.0.75', greet: (s) => setTimeout(() => s.write('220 late\r\n'), 300)}))
    await keep(startSmtp({host: '127.0.0.76', port: late.port, greeting: '220 early\r\n'}))
    const words = ['127.0.0.75', '127.0.0.76']
    const fast = await run(words, {port: late.port})
    expect(fast.winner?.name).toBe('127.0.0.76')
    expect(outcome(fast, '127.0.0.75')).toEqual(['cancelled'])
    const ordered = await run(words, {port: late.port, sequential: true})
    expect(ordered.winner?.name).toBe('127.0.0.75')
    expect(ordered.servers.map((s) => s.entry.name)).toEqual(['127.0.0.75']) // the second is never probed
    const cli = await runCli(['--no-cache', '--sequential', '--port', String(late.port), ...words])
    expect([cli.stdout, cli.status]).toEqual(['127.0.0.75\n', 1])
  })

  it('tears down the other servers once one is available (the fixture sees its connection closed)', async () => {
    const silent = await keep(startSmtp({host: '127.0.0.77'}))
    const live = await keep(startSmtp({host: '127.0.0.78', port: silent.port, greet: (s) => setTimeout(() => s.write('220 ok\r\n'), 100)}))
    const report = await run(['127.0.0.77', '127.0.0.78'], {port: silent.port})
    expect(report.winner?.name).toBe('127.0.0.78')
    await until(() => silent.connections.length === 1 && silent.connections[0].closed)
    await until(() => live.connections[0].closed && live.sent()[0] === 'QUIT\r\n')
  })

  it('when every candidate fails, the answer comes at once (refused everywhere, budget 10 s)', async () => {
    const port = await closedPort('127.0.0.79')
    const report = await run(['127.0.0.79', '127.0.0.80', '[::1]'], {port})
    expect(report.exitCode).toBe(0)
    expect(report.servers.map((s) => s.attempts[0].outcome)).toEqual(['refused', 'refused', 'refused'])
    expect(report.elapsedMs).toBeLessThan(2000)
  })

  it('many candidates at once (40 refused): exit 0 at once, nothing on stderr (no listener warning)', async () => {
    const port = await closedPort('127.0.5.1')
    const words = Array.from({length: 40}, (_, i) => `127.0.5.${i + 1}`)
    const r = await runCli(['--no-cache', '--port', String(port), ...words])
    expect(r).toMatchObject({stdout: '', stderr: '', status: 0})
  })

  it('leaves no timer or socket behind', async () => {
    const hole = await keep(startBlackhole('127.0.0.81'))
    const live = await keep(startSmtp({host: '127.0.0.82', port: hole.port, greeting: '220 ok\r\n'}))
    const count = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout' || r === 'TCPSocketWrap').length
    const before = count()
    const report = await run(['127.0.0.81', '127.0.0.82'], {port: live.port, timeoutMs: 30_000})
    expect(report.winner?.name).toBe('127.0.0.82')
    await until(() => live.connections[0].closed) // the QUIT flush is the last thing to go
    await until(() => count() <= before)
  })
})

describe('one name, several addresses (--dns-server)', () => {
  it('an address that accepts TCP but never greets does not hold up one that greets', async () => {
    const silent = await keep(startSmtp({host: '::1'}))
    const live = await keep(startSmtp({host: '127.0.0.83', port: silent.port, greeting: '220 mx ESMTP\r\n'}))
    const dns = await keep(startDns({'mx.example.test': {AAAA: ['::1'], A: ['127.0.0.83']}}))
    const args = ['--no-cache', '--json', '--port', String(live.port), '--dns-server', dns.address, '--timeout', '10', '--attempt-delay', '600']
    const r = await runCli([...args, 'mx.example.test'])
    expect(r.status).toBe(1)
    expect(r.ms).toBeLessThan(5000) // the budget is 10 s
    const [entry] = JSON.parse(r.stdout).entries
    expect(entry.lookup.addresses).toEqual(['::1', '127.0.0.83'])
    expect(entry.attempts.map((a: {address: string; outcome: string}) => [a.address, a.outcome])).toEqual([
      ['::1', 'cancelled'],
      ['127.0.0.83', 'available'],
    ])
    expect(entry.attempts[1].startMs - entry.attempts[0].startMs).toBeGreaterThanOrEqual(590) // --attempt-delay 600
    await until(() => silent.connections[0]?.closed)
  })
})

describe('-4 / -6 (SPEC §2)', () => {
  it('an entry of the other family is unavailable; a name keeps only its addresses of the family', async () => {
    const v6 = await keep(startSmtp({host: '::1', greeting: '220 six\r\n'}))
    const v4 = await keep(startSmtp({host: '127.0.0.84', port: v6.port, greeting: '220 four\r\n'}))
    const dns = await keep(startDns({'both.test': {AAAA: ['::1'], A: ['127.0.0.84']}, 'four.test': {A: ['127.0.0.84']}}))
    const only6 = await run(['127.0.0.84', 'four.test'], {port: v6.port, family: 6, dns: dns.address})
    expect(only6.exitCode).toBe(0)
    expect(only6.servers.map((s) => [s.entry.name, s.note, s.attempts.length])).toEqual([
      ['127.0.0.84', 'no IPv6 address', 0],
      ['four.test', 'no IPv6 address', 0],
    ])
    expect(v4.connections).toHaveLength(0)
    const only4 = await run(['both.test'], {port: v6.port, family: 4, dns: dns.address})
    expect(only4.winner?.name).toBe('both.test')
    expect(server(only4, 'both.test')?.addresses).toEqual(['127.0.0.84'])
    expect(v6.connections).toHaveLength(0)
    const cli = await runCli(['--no-cache', '-6', '--port', String(v6.port), '--dns-server', dns.address, '127.0.0.84', 'both.test'])
    expect([cli.stdout, cli.status]).toEqual(['both.test\n', 1])
    expect(v4.connections).toHaveLength(1) // only the run with -4 went there
  })

  it('--stop matching still uses both families', async () => {
    const live = await keep(startSmtp({host: '127.0.0.85', greeting: '220 mx\r\n'}))
    const port = live.port
    const dns = await keep(startDns({'mx.test': {AAAA: ['::1'], A: ['127.0.0.85']}}))
    // mx.test is the local host through its AAAA ::1 even under -4: only 10:127.0.0.86 is a candidate.
    const report = await run(['10:127.0.0.86', '20:mx.test'], {port, family: 4, dns: dns.address, stops: [{address: '::1'}]})
    expect(report.selection.local.map((e) => e.name)).toEqual(['mx.test'])
    expect(report.selection.candidates.map((e) => e.name)).toEqual(['127.0.0.86'])
    expect(report.exitCode).toBe(0)
    expect(live.connections).toHaveLength(0)
  })
})

describe('every outcome class from a real fixture (SPEC §6)', () => {
  it('rejected (code and text), not-smtp, closed, refused, connect-timeout, greeting-timeout', async () => {
    const hole = await keep(startBlackhole('127.0.0.91'))
    const port = hole.port
    await keep(startSmtp({host: '127.0.0.92', port, greeting: '554 5.7.1 go away\r\n'}))
    await keep(startSmtp({host: '127.0.0.93', port, greeting: 'SSH-2.0-OpenSSH_9.6\r\n'}))
    await keep(startSmtp({host: '127.0.0.94', port, greet: (s) => s.end('220 no line end')}))
    await keep(startSmtp({host: '127.0.0.95', port}))
    await keep(startSmtp({host: '127.0.0.96', port, greeting: `220 ${'x'.repeat(600)}\r\n`}))
    const report = await run(['127.0.0.91', '127.0.0.92', '127.0.0.93', '127.0.0.94', '127.0.0.95', '127.0.0.96', '127.0.0.97'], {
      port,
      timeoutMs: 1200,
    })
    expect(report.exitCode).toBe(0)
    const attempt = (name: string) => server(report, name)!.attempts[0]
    expect(attempt('127.0.0.91')).toMatchObject({outcome: 'connect-timeout'})
    expect(attempt('127.0.0.92')).toMatchObject({outcome: 'rejected', code: 554, line: '554 5.7.1 go away'})
    expect(attempt('127.0.0.93')).toMatchObject({outcome: 'not-smtp', line: 'SSH-2.0-OpenSSH_9.6'})
    expect(attempt('127.0.0.94')).toMatchObject({outcome: 'closed'})
    expect(attempt('127.0.0.95')).toMatchObject({outcome: 'greeting-timeout'})
    expect(attempt('127.0.0.96')).toMatchObject({outcome: 'not-smtp'})
    expect(attempt('127.0.0.97')).toMatchObject({outcome: 'refused', error: 'ECONNREFUSED'})
    expect(server(report, '127.0.0.91')!.note).toBe('budget ran out')
  })

  it('available and cancelled; cached on the next run', async () => {
    const live = await keep(startSmtp({host: '127.0.0.98', greeting: '220 ok\r\n'}))
    const port = live.port
    await keep(startSmtp({host: '127.0.0.99', port}))
    const cache = new MemoryCache({negative: 60, positive: 60})
    const first = await run(['127.0.0.99', '127.0.0.98'], {port, cache})
    expect(outcome(first, '127.0.0.98')).toEqual(['available'])
    expect(outcome(first, '127.0.0.99')).toEqual(['cancelled'])
    const second = await run(['127.0.0.98'], {port, cache})
    expect(server(second, '127.0.0.98')!.attempts).toMatchObject([{outcome: 'cached', cachedAs: 'available'}])
    expect(live.connections).toHaveLength(1)
  })

  // Loopback never answers "unreachable"; a network namespace of our own (lo down) does.
  const netns = spawn('unshare', ['-rn', 'true'])
  const haveNetns = once(netns, 'close').then(([code]) => code === 0, () => false)
  it('unreachable: in a fresh network namespace (loopback down), 127.0.0.1 is unreachable', async (context) => {
    if (!(await haveNetns)) return context.skip()
    const {stdout, status} = await runTimed(['-rn', process.execPath, BIN, '--no-cache', '--json', '127.0.0.1', '[::1]'], {command: 'unshare'})
    expect(status).toBe(0)
    const attempts = JSON.parse(stdout).entries.map((e: {attempts: Array<{outcome: string; error: string}>}) => e.attempts[0])
    expect(attempts.map((a: {outcome: string}) => a.outcome)).toEqual(['unreachable', 'unreachable'])
    expect(attempts[0].error).toBe('ENETUNREACH')
  })
})

describe('lookup outcomes (SPEC §6)', () => {
  it('resolved, nxdomain, no-address, dns-error (SERVFAIL and a silent server)', async () => {
    const port = await closedPort('127.0.0.100')
    const dns = await keep(
      startDns({
        'ok.test': {A: ['127.0.0.100']},
        'nx.test': {nxdomain: true},
        'empty.test': {},
        'fail.test': {servfail: true},
        'slow.test': {silent: true},
      }),
    )
    const report = await run(['ok.test', 'nx.test', 'empty.test', 'fail.test', 'slow.test'], {port, dns: dns.address, timeoutMs: 1200})
    const lookups = Object.fromEntries([...report.lookups].map(([entry, l]) => [entry.name, [l.outcome, l.addresses]]))
    expect(lookups).toEqual({
      'ok.test': ['resolved', ['127.0.0.100']],
      'nx.test': ['nxdomain', []],
      'empty.test': ['no-address', []],
      'fail.test': ['dns-error', []],
      'slow.test': ['dns-error', []],
    })
    expect(report.lookups.get(report.entries[4])!.error).toBe('ETIMEOUT')
    expect(report.servers.map((s) => s.note)).toEqual([undefined, 'lookup nxdomain', 'lookup no-address', 'lookup dns-error', 'lookup dns-error'])
    expect(outcome(report, 'ok.test')).toEqual(['refused'])
  })
})

describe('a lookup that failed for a local reason (SPEC §3: EMFILE, ENFILE, ENOBUFS, ENOMEM)', () => {
  const LIVE = '127.10.3.30'
  const LOCAL = '127.10.3.20'
  /** live.test is the live server, local.test this host; `starved` names fail with `code`, hung.test never answers. */
  const resolver = (starved: string[], code = 'EMFILE') => async (name: string, signal: AbortSignal): Promise<Lookup> => {
    if (starved.includes(name)) return {outcome: 'dns-error', addresses: [], error: code}
    if (name === 'live.test') return {outcome: 'resolved', addresses: [LIVE]}
    if (name === 'local.test') return {outcome: 'resolved', addresses: [LOCAL]}
    return new Promise((resolve) => signal.addEventListener('abort', () => resolve({outcome: 'dns-error', addresses: [], error: 'ETIMEOUT'})))
  }
  const runWith = async (words: string[], starved: string[], code?: string) => {
    const live = await keep(startSmtp({host: LIVE, greeting: '220 live\r\n'}))
    return check(
      {entries: parseServerList(words), stops: [{address: LOCAL}], timeoutMs: 500, port: live.port, attemptDelayMs: 250, sequential: false},
      {resolver: resolver(starved, code), attempt: attemptSmtp, now: () => performance.now()},
    ).then((report) => report.winner?.name ?? 'exit 0', (error: Error) => `${error.name}: ${error.message}`)
  }

  it.each([
    // This host's own lookup starved: the server at 30 is not known to be a candidate (never a wrong 1).
    [['10:hung.test', '20:local.test', '30:live.test'], ['local.test'], 'EMFILE', 'FatalError: system error: cannot look up local.test: EMFILE, this host is out of file descriptors or buffers'],
    // The more preferred live server's lookup starved: it could not be probed (never a wrong 0).
    [['10:live.test', '20:local.test'], ['live.test'], 'ENOBUFS', 'FatalError: system error: cannot look up live.test: ENOBUFS, this host is out of file descriptors or buffers'],
    [['live.test', 'local.test', 'hung.test'], ['live.test'], 'ENFILE', 'FatalError: system error: cannot look up live.test: ENFILE, this host is out of file descriptors or buffers'],
    // The answer cannot rest on the starved lookup: it stands.
    [['10:live.test', '20:local.test', '30:x.test'], ['x.test'], 'EMFILE', 'live.test'],
    [['10:hung.test', '20:local.test', '30:x.test'], ['x.test'], 'ENOMEM', 'exit 0'],
    // Not a local reason: a lookup error is "not the local host" / unavailable, as before.
    [['10:hung.test', '20:local.test', '30:live.test'], ['local.test'], 'ECONNREFUSED', 'live.test'],
  ])('%j with %j failing %s → %s', async (words, starved, code, want) => {
    expect(await runWith(words, starved, code)).toBe(want)
  })
})
