// Interop (issue 6): dnsmasq on loopback as --dns-server: a name with several addresses
// (all of them tried), NXDOMAIN, and a name whose upstream (a loopback UDP port that never
// answers) makes the lookup time out within the budget. No upstream outside loopback.
import dgram from 'node:dgram'
import {once} from 'node:events'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {cannotRun, DNSMASQ, startDnsmasq} from '../../fixtures/interop/servers.js'
import {startSmtp} from '../../fixtures/smtp.js'
import {runCli} from '../cli.js'

const skip = cannotRun(DNSMASQ)
if (skip) console.warn(`interop/dnsmasq skipped: ${skip}`)

describe.skipIf(skip !== undefined)(`dnsmasq as --dns-server${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let dns: Awaited<ReturnType<typeof startDnsmasq>>
  let dead: dgram.Socket
  let deadQueries = 0
  let smtp: Awaited<ReturnType<typeof startSmtp>>
  beforeAll(async () => {
    // The blackholed upstream for slow.test: it reads queries and never answers.
    dead = dgram.createSocket('udp4')
    dead.on('message', () => deadQueries++)
    dead.bind(0, '127.0.0.36')
    await once(dead, 'listening')
    // multi.test: the SMTP server is on its last address; the other three (one IPv6) refuse.
    smtp = await startSmtp({host: '127.0.0.43', greeting: '220 multi ESMTP\r\n'})
    dns = await startDnsmasq({
      hosts: ['127.0.0.41 multi.test', '::1 multi.test', '127.0.0.42 multi.test', '127.0.0.43 multi.test', '127.0.0.44 stop.test'],
      deadUpstream: `127.0.0.36#${dead.address().port}`,
    })
  }, 30_000)
  afterAll(async () => {
    await dns?.close()
    await smtp?.close()
    dead?.close()
  })

  const cli = (args: string[]) => runCli(['--no-cache', '--json', '--dns-server', dns.address, '--port', String(smtp.port), '--attempt-delay', '50', ...args])

  it('a name with three A records and an AAAA: all resolved, tried in turn (families interleaved), the last greets', async () => {
    const r = await cli(['--timeout', '5', 'multi.test'])
    expect(r.status).toBe(1)
    const [entry] = JSON.parse(r.stdout).entries
    expect(entry.lookup.outcome).toBe('resolved')
    expect([...entry.lookup.addresses].sort()).toEqual(['127.0.0.41', '127.0.0.42', '127.0.0.43', '::1'])
    const outcomes = Object.fromEntries(entry.attempts.map((a: {address: string; outcome: string}) => [a.address, a.outcome]))
    expect(outcomes['127.0.0.43']).toBe('available')
    expect(Object.values(outcomes).filter((o) => o === 'refused')).toHaveLength(3)
    expect(dns.log()).toMatch(/query\[A\] multi\.test from 127\.0\.0\.1/)
    expect(dns.log()).toMatch(/query\[AAAA\] multi\.test from 127\.0\.0\.1/)
  })

  it('NXDOMAIN: unavailable at once, exit 0', async () => {
    const r = await cli(['--timeout', '5', 'nowhere.test'])
    expect(r.status).toBe(0)
    const [entry] = JSON.parse(r.stdout).entries
    expect(entry.lookup.outcome).toBe('nxdomain')
    expect(entry.attempts).toEqual([])
    expect(r.ms).toBeLessThan(4000)
  })

  it('a lookup that times out (forwarded to a silent loopback upstream): unavailable at the 1 s budget', async () => {
    const before = deadQueries
    const r = await cli(['--timeout', '1', 'slow.test', 'multi.test'])
    // multi.test still answers: the slow name costs its own budget, not the run.
    expect(r.status).toBe(1)
    const json = JSON.parse(r.stdout)
    const slow = json.entries.find((e: {name: string}) => e.name === 'slow.test')
    expect(slow.lookup?.outcome ?? slow.note).toMatch(/dns-error|budget/)
    expect(deadQueries).toBeGreaterThan(before)
    expect(dns.log()).toMatch(/forwarded slow\.test to 127\.0\.0\.36/)

    const alone = await cli(['--timeout', '1', 'slow.test'])
    expect(alone.status).toBe(0)
    expect(alone.ms).toBeGreaterThanOrEqual(900)
    expect(alone.ms).toBeLessThan(4000)
  })

  it('--stop resolved through dnsmasq: its name is the local host, the better MX is probed', async () => {
    const r = await cli(['--timeout', '5', '--stop', 'stop.test', '10:multi.test', '20:stop.test'])
    expect(r.status).toBe(1)
    expect(JSON.parse(r.stdout).decision.server).toBe('multi.test')
    const nx = await runCli(['--no-cache', '--dns-server', dns.address, '--stop', 'nowhere.test', '10:multi.test'])
    expect(nx.status).toBe(2)
    expect(nx.stderr).toMatch(/^smtpdcheck: .*nowhere\.test/)
  })
})
