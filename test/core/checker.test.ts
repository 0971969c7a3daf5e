// The long-lived checker in-process (src/core/checker.ts, dns-cache.ts): DNS answers held
// by an injected clock, shared in flight, failures not kept; a client that leaves mid-probe
// leaves nothing behind (sockets, timers). Loopback range 127.0.20.0/24.
import net from 'node:net'
import {setTimeout as sleep} from 'node:timers/promises'
import {describe, expect, it} from 'vitest'

import {startDns} from '../../fixtures/dns.js'
import {startSmtp, until} from '../../fixtures/smtp.js'
import {decideWith} from '../../src/cli/serve.js'
import {attemptSmtp} from '../../src/core/attempt.js'
import {MemoryCache} from '../../src/core/cache.js'
import {createChecker, longLived} from '../../src/core/checker.js'
import {cachingMxResolver, cachingResolver, SERVE_DNS_CACHE} from '../../src/core/dns-cache.js'
import {mxResolver} from '../../src/core/mx.js'
import {createDnsClient} from '../../src/core/dns-client.js'
import {dnsResolver, type Lookup} from '../../src/core/resolve.js'
import {startPolicyServer} from '../../src/policy/server.js'
import {closedAfterEach} from '../fixtures.js'
import {rcpt} from '../policy/client.js'

const keep = closedAfterEach()
const signal = new AbortController().signal

/** A clock the test moves, and a resolver that answers `answer(name)` and counts its calls. */
function fakes(answer: (name: string) => Lookup) {
  const clock = {ms: 0}
  const calls: string[] = []
  const resolver = async (name: string) => (calls.push(name), answer(name))
  const options = {...SERVE_DNS_CACHE, now: () => clock.ms}
  return {clock, calls, resolver, options}
}

describe('cachingResolver', () => {
  it('keeps an answer for its TTL, capped at 30 s; concurrent askers share one query', async () => {
    const {clock, calls, resolver, options} = fakes((name) => ({outcome: 'resolved', addresses: ['192.0.2.1'], ttl: name === 'long.test' ? 3600 : 10}))
    const cached = cachingResolver(resolver, options)
    await Promise.all([cached('short.test', signal), cached('SHORT.test.', signal), cached('short.test', signal)])
    expect(calls).toEqual(['short.test'])
    clock.ms = 9_999
    await cached('short.test', signal)
    expect(calls).toHaveLength(1)
    clock.ms = 10_000
    await cached('short.test', signal)
    expect(calls).toHaveLength(2)
    await cached('long.test', signal)
    clock.ms += 29_999
    await cached('long.test', signal)
    expect(calls.filter((n) => n === 'long.test')).toHaveLength(1)
    clock.ms += 1
    await cached('long.test', signal)
    expect(calls.filter((n) => n === 'long.test')).toHaveLength(2) // 3600 s capped at 30 s
  })

  it('NXDOMAIN / no address for 5 s, a DNS error not at all, TTL 0 not at all', async () => {
    const answers: Record<string, Lookup> = {
      'nx.test': {outcome: 'nxdomain', addresses: [], error: 'ENOTFOUND'},
      'fail.test': {outcome: 'dns-error', addresses: [], error: 'ESERVFAIL'},
      'zero.test': {outcome: 'resolved', addresses: ['192.0.2.1'], ttl: 0},
    }
    const {clock, calls, resolver, options} = fakes((name) => answers[name])
    const cached = cachingResolver(resolver, options)
    for (const name of ['nx.test', 'nx.test', 'fail.test', 'fail.test', 'zero.test', 'zero.test']) await cached(name, signal)
    expect(calls).toEqual(['nx.test', 'fail.test', 'fail.test', 'zero.test', 'zero.test'])
    clock.ms = 5000
    await cached('nx.test', signal)
    expect(calls.filter((n) => n === 'nx.test')).toHaveLength(2)
  })

  it('holds at most maxEntries names (the oldest goes first)', async () => {
    const {calls, resolver, options} = fakes(() => ({outcome: 'resolved', addresses: ['192.0.2.1'], ttl: 60}))
    const cached = cachingResolver(resolver, {...options, maxEntries: 2})
    for (const name of ['a.test', 'b.test', 'c.test', 'c.test', 'b.test', 'a.test']) await cached(name, signal)
    expect(calls).toEqual(['a.test', 'b.test', 'c.test', 'a.test'])
  })
})

describe('cachingMxResolver', () => {
  it('records for their TTL, at most 30 s; NXDOMAIN / NODATA for 5 s (rejecting with the same code); SERVFAIL not kept', async () => {
    const clock = {ms: 0}
    const calls: string[] = []
    const fail = (code: string) => Object.assign(new Error(code), {code})
    const resolveMx = async (name: string) => {
      calls.push(name)
      if (name === 'nx.test') throw fail('ENOTFOUND')
      if (name === 'servfail.test') throw fail('ESERVFAIL')
      return {records: [{priority: 10, exchange: 'mx.test'}], ttl: 3600}
    }
    const cached = cachingMxResolver(resolveMx, {...SERVE_DNS_CACHE, now: () => clock.ms})
    expect(await cached('mx.test', signal)).toEqual({records: [{priority: 10, exchange: 'mx.test'}], ttl: 3600})
    for (let i = 0; i < 2; i++) {
      await expect(cached('nx.test', signal)).rejects.toMatchObject({code: 'ENOTFOUND'})
      await expect(cached('servfail.test', signal)).rejects.toMatchObject({code: 'ESERVFAIL'})
    }
    clock.ms = 29_999
    await cached('MX.test.', signal)
    expect(calls).toEqual(['mx.test', 'nx.test', 'servfail.test', 'servfail.test'])
    clock.ms = 30_000
    await cached('mx.test', signal)
    await expect(cached('nx.test', signal)).rejects.toMatchObject({code: 'ENOTFOUND'})
    expect(calls.slice(4)).toEqual(['mx.test', 'nx.test'])
  })

  it('a short TTL is followed: TTL 2 s → asked again after 2 s; TTL 0 → asked every time (issue 20 item 5)', async () => {
    const clock = {ms: 0}
    const calls: string[] = []
    const ttls: Record<string, number> = {'short.test': 2, 'zero.test': 0}
    const resolveMx = async (name: string) => {
      calls.push(name)
      return {records: [{priority: 10, exchange: `mx.${name}`}], ttl: ttls[name]}
    }
    const cached = cachingMxResolver(resolveMx, {...SERVE_DNS_CACHE, now: () => clock.ms})
    for (const ms of [0, 1999, 2000]) {
      clock.ms = ms
      await cached('short.test', signal)
      await cached('zero.test', signal)
    }
    expect(calls).toEqual(['short.test', 'zero.test', 'zero.test', 'short.test', 'zero.test'])
  })
})

/** Sockets and timers alive in this process now. */
function resources() {
  const info = process.getActiveResourcesInfo()
  return {sockets: info.filter((r) => r === 'TCPSocketWrap').length, timers: info.filter((r) => r === 'Timeout').length}
}

describe('a client that leaves mid-probe', () => {
  it('aborts the shared probe: the primary sees the connection closed, no socket or timer is left', async () => {
    const primary = await keep(startSmtp({host: '127.0.20.30'})) // accepts, never greets
    const dns = await keep(startDns({'leave.test': {MX: [[10, 'mx1.leave.test'], [20, 'mx2.leave.test']]}, 'mx1.leave.test': {A: ['127.0.20.30']}, 'mx2.leave.test': {A: ['127.0.20.31']}}, {host: '127.0.20.1'}))
    const dnsClient = await keep(Promise.resolve(createDnsClient({servers: [{address: '127.0.20.1', port: dns.port}]})))
    const now = () => performance.now()
    const checker = createChecker(
      {timeoutMs: 5000, port: primary.port, attemptDelayMs: 250, sequential: false},
      longLived({resolver: dnsResolver(dnsClient), resolveMx: mxResolver(dnsClient), attempt: attemptSmtp, now, cache: new MemoryCache({positive: 30, negative: 60})}, {...SERVE_DNS_CACHE, now}),
    )
    const policy = await startPolicyServer({listen: [{kind: 'inet', host: '127.0.20.1', port: 0}], decide: decideWith(checker), timeoutMs: 5000, log: () => {}})
    const port = Number(policy.endpoints[0].split(':').at(-1))
    await sleep(50)
    const before = resources()
    const client = net.connect({host: '127.0.20.1', port})
    client.on('error', () => {})
    client.write(rcpt('a@leave.test', {server_address: '127.0.20.31'}))
    await until(() => primary.connections.length === 1, 3000)
    expect(resources().sockets).toBe(before.sockets + 4) // client, its server side, the probe, the primary fixture's side
    client.resetAndDestroy() // RST: gone (a FIN alone is a half-close, still answered: Exim)
    await until(() => primary.connections[0].closed, 3000)
    await until(() => policy.connections() === 0, 3000)
    await sleep(50)
    const after = resources()
    expect(after.sockets).toBeLessThanOrEqual(before.sockets)
    expect(after.timers).toBeLessThanOrEqual(before.timers)
    await policy.close()
  })
})
