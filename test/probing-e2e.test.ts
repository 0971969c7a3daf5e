// Issue 10, the core half, through the built binary: a lookup that cannot change the answer
// does not hold it; unspecified addresses are never probed; out of descriptors is exit 2;
// 40,000 words cost little. Loopback only (127.0.11.0/24, 127.12.0.0/16 for long lists).
import net from 'node:net'
import {once} from 'node:events'
import {describe, expect, it} from 'vitest'

import {startDns} from '../fixtures/dns.js'
import {runTimed} from '../fixtures/spawn.js'
import {closedPort, startSmtp} from '../fixtures/smtp.js'
import {BIN, runCli} from './cli.js'
import {closedAfterEach} from './fixtures.js'

const keep = closedAfterEach()

describe('a lookup that cannot change the answer does not hold it (SPEC §3)', () => {
  it('--stop mx2 10:mx1 20:mx2 30:lame, lame never answers: mx1 printed at once', async () => {
    const dns = await keep(startDns({'mx1.test': {A: ['127.0.11.1']}, 'mx2.test': {A: ['127.0.11.2']}, 'lame.test': {silent: true}}, {host: '127.0.11.53'}))
    const primary = await keep(startSmtp({host: '127.0.11.1', greeting: '220 mx1\r\n'}))
    const args = ['--no-cache', '--dns-server', dns.address, '--port', String(primary.port), '--timeout', '8', '--stop', 'mx2.test']
    const run = await runCli([...args, '10:mx1.test', '20:mx2.test', '30:lame.test'])
    expect([run.stdout, run.stderr, run.status]).toEqual(['mx1.test\n', '', 1])
    expect(run.ms).toBeLessThan(3000) // lame's budget is 8 s
    // The same with the hung name before the others in list order and without priorities after the local host.
    const again = await runCli([...args, '30:lame.test', '10:mx1.test', '20:mx2.test', 'lame.test.'])
    expect([again.stdout, again.status]).toEqual(['mx1.test\n', 1])
    expect(again.ms).toBeLessThan(3000)
  })

  it('a hung name that could be the local host is waited for, then counts as not the local host', async () => {
    const dns = await keep(startDns({'mx1.test': {A: ['127.0.11.3']}, 'mx2.test': {A: ['127.0.11.2']}, 'lame.test': {silent: true}}, {host: '127.0.11.54'}))
    const primary = await keep(startSmtp({host: '127.0.11.3', greeting: '220 mx1\r\n'}))
    const run = await runCli(['--no-cache', '--dns-server', dns.address, '--port', String(primary.port), '--timeout', '1.5', '--stop', 'mx2.test', '10:mx1.test', '10:lame.test', '20:mx2.test'])
    // lame (priority 10, like mx1) could be the local host: its lookup runs out (1.5 s), then mx1 gets its own budget.
    expect([run.stdout, run.stderr, run.status]).toEqual(['mx1.test\n', '', 1])
    expect(run.ms).toBeGreaterThanOrEqual(1400)
  })
})

describe('an unspecified address is never probed (0.0.0.0 and :: reach this host)', () => {
  it('from DNS and as literal words: nothing connects to the local MTA; the --json note says why', async () => {
    const v4 = await keep(startSmtp({host: '127.0.0.1', greeting: '220 this host\r\n'}))
    const v6 = await keep(startSmtp({host: '::1', port: v4.port, greeting: '220 this host\r\n'}))
    const dns = await keep(startDns({'zero.test': {A: ['0.0.0.0'], AAAA: ['::']}}, {host: '127.0.11.55'}))
    const run = await runCli(['--no-cache', '--json', '--dns-server', dns.address, '--port', String(v4.port), 'zero.test', '0.0.0.0', '[::]'])
    expect(run.status).toBe(0)
    expect(v4.connections.length + v6.connections.length).toBe(0)
    const servers = JSON.parse(run.stdout).entries as Array<{name: string; note: string | null; attempts: unknown[]}>
    expect(servers.map((s) => [s.name, s.note, s.attempts.length])).toEqual([
      ['zero.test', 'unspecified address ::, 0.0.0.0 not probed', 0],
      ['0.0.0.0', 'unspecified address 0.0.0.0 not probed', 0],
      ['[::]', 'unspecified address :: not probed', 0],
    ])
  })
})

describe('out of file descriptors is a system error, not "no server available" (issue 10 defect 5)', () => {
  const words = Array.from({length: 60}, (_, i) => `127.0.11.${100 + i}`)
  /** The binary under `ulimit -n 32`. */
  const limited = (args: string[]) =>
    runTimed(['-c', 'ulimit -n 32 && exec "$@"', 'bash', process.execPath, BIN, '--no-cache', ...args], {command: 'bash', limitMs: 20_000})

  it('candidates that could not be probed: exit 2, one line naming EMFILE', async () => {
    const closed = await closedPort('127.0.11.100')
    const run = await limited(['--port', String(closed), '--timeout', '3', ...words])
    expect(run.stdout).toBe('')
    expect(run.stderr).toMatch(/^smtpdcheck: system error: cannot probe 127\.0\.11\.\d+ \(127\.0\.11\.\d+:\d+\): EMFILE, this host is out of file descriptors or buffers\n$/)
    expect(run.status).toBe(2)
  })

  it('another candidate found available: exit 1 stands', async () => {
    const server = net.createServer((socket) => socket.end('220 up\r\n'))
    server.listen({host: '127.0.11.100', port: 0})
    await once(server, 'listening')
    try {
      const port = (server.address() as net.AddressInfo).port
      const run = await limited(['--port', String(port), '--timeout', '3', ...words])
      expect([run.stdout, run.status]).toEqual(['127.0.11.100\n', 1])
    } finally {
      server.close()
    }
  })
})

describe('40,000 words (issue 10 defect 6)', () => {
  const words = Array.from({length: 40_000}, (_, i) => `127.12.${i >> 8}.${i & 255}`)

  it('--stop equal to the first word: no candidate, nothing probed, exit 0 within a bound', async () => {
    const run = await runCli(['--no-cache', '--verbose', '--stop', words[0], ...words], {limitMs: 30_000})
    expect(run.status).toBe(0)
    expect(run.stderr).not.toMatch(/attempt|MaxListeners/)
    expect(run.ms).toBeLessThan(7000) // 9.9 s before issue 10 (a listener per budget); 2.4–3.9 s now, most of it parsing argv
  }, 40_000)

  it('the first 5,000 of 40,000 are candidates on closed loopback ports: all probed, exit 0 within a bound', async () => {
    const closed = await closedPort('127.0.0.1')
    const run = await runCli(['--no-cache', '--timeout', '2', '--port', String(closed), '--stop', words[5000], ...words], {limitMs: 40_000})
    expect([run.stdout, run.stderr, run.status]).toEqual(['', '', 0])
    expect(run.ms).toBeLessThan(8000) // 10.3 s before issue 10; 3.3 s now
  }, 60_000)
})
