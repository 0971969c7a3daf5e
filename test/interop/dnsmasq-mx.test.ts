// Interop (issue 11): --mx against real DNS software. dnsmasq on 127.0.13.35 serves
// `--mx-host` records; the exchanges are SMTP fixtures on 127.0.13.x. No upstream outside
// loopback: slow.test is forwarded to a loopback UDP port that never answers.
import dgram from 'node:dgram'
import {once} from 'node:events'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {cannotRun, DNSMASQ, startDnsmasq} from '../../fixtures/interop/servers.js'
import {startSmtp} from '../../fixtures/smtp.js'
import {runCli} from '../cli.js'

const skip = cannotRun(DNSMASQ)
if (skip) console.warn(`interop/dnsmasq-mx skipped: ${skip}`)

describe.skipIf(skip !== undefined)(`dnsmasq as --dns-server for --mx${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let dns: Awaited<ReturnType<typeof startDnsmasq>>
  let dead: dgram.Socket
  let primary: Awaited<ReturnType<typeof startSmtp>>
  beforeAll(async () => {
    dead = dgram.createSocket('udp4')
    dead.bind(0, '127.0.13.36')
    await once(dead, 'listening')
    primary = await startSmtp({host: '127.0.13.41', greeting: '220 primary ESMTP\r\n'})
    dns = await startDnsmasq({
      host: '127.0.13.35',
      hosts: ['127.0.13.41 mx1.example.test', '127.0.13.42 mx2.example.test', '127.0.13.41 plain.test'],
      deadUpstream: `127.0.13.36#${dead.address().port}`,
      // Written out of preference order on purpose.
      options: ['example.test,mx2.example.test,20', 'example.test,mx1.example.test,10', 'best.test,mx2.example.test,5',
        'best.test,mx1.example.test,50'].map((mx) => `--mx-host=${mx}`),
    })
  }, 30_000)
  afterAll(async () => {
    await dns?.close()
    await primary?.close()
    dead?.close()
  })

  const cli = (args: string[]) => runCli(['--no-cache', '--dns-server', dns.address, '--port', String(primary.port), ...args])

  it('the records in preference order; the secondary (--stop) defers to the primary that is up', async () => {
    const r = await cli(['--json', '--stop', '127.0.13.42', '--mx', 'example.test'])
    expect(r.status).toBe(1)
    const doc = JSON.parse(r.stdout)
    expect(doc.mx).toEqual({domain: 'example.test', outcome: 'mx', records: [{prio: 10, exchange: 'mx1.example.test'}, {prio: 20, exchange: 'mx2.example.test'}]})
    expect(doc.decision.server).toBe('mx1.example.test')
    expect(dns.log()).toMatch(/query\[MX\] example\.test from 127\.0\.0\.1/)
  })

  it('the local host is the best MX: exit 0, nothing probed', async () => {
    const before = primary.connections.length
    expect(await cli(['--stop', '127.0.13.42', '--mx', 'best.test'])).toMatchObject({status: 0, stdout: '', stderr: ''})
    expect(primary.connections.length).toBe(before)
  })

  it('NODATA (an address, no MX): the implicit MX, the domain itself', async () => {
    const r = await cli(['--json', '--mx', 'plain.test'])
    expect(r.status).toBe(1)
    expect(JSON.parse(r.stdout).mx.outcome).toBe('implicit')
    expect(JSON.parse(r.stdout).decision.server).toBe('plain.test')
  })

  it('NXDOMAIN: exit 0', async () => {
    const r = await cli(['--json', '--mx', 'nowhere.test'])
    expect(r.status).toBe(0)
    expect(JSON.parse(r.stdout).mx.outcome).toBe('nxdomain')
  })

  it('no answer (silent upstream) within --timeout: exit 2 naming the domain', async () => {
    const r = await cli(['--timeout', '1', '--mx', 'slow.test'])
    expect(r).toMatchObject({status: 2, stdout: ''})
    expect(r.stderr).toMatch(/^smtpdcheck: cannot look up the MX records of "slow\.test": .*\n$/)
    expect(r.ms).toBeLessThan(5000)
  })
})
