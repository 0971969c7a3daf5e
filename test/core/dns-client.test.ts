// The DNS client (src/core/dns-client.ts) against the loopback DNS fixture over real UDP and
// TCP: shared sockets (counted by the source ports the server sees), one caller's abort never
// ending another's query, the caps, TC → TCP, the owner filter, rcodes, TTLs, junk dropped,
// and a local failure (EMFILE) reported as itself (in a child process whose descriptors run out).
import dgram from 'node:dgram'
import {readdirSync} from 'node:fs'
import {once} from 'node:events'
import {fileURLToPath} from 'node:url'
import {setTimeout as sleep} from 'node:timers/promises'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {createDnsClient, DNS_LIMITS, type DnsClientOptions, type DnsStats} from '../../src/core/dns-client.js'
import {parseResolvConf} from '../../src/core/resolv-conf.js'
import {startDns} from '../../fixtures/dns.js'
import {runTimed} from '../../fixtures/spawn.js'
import {until} from '../../fixtures/smtp.js'
import {closedAfterEach} from '../fixtures.js'

const keep = closedAfterEach()
const HOST = '127.10.1.53'
const BIG = Array.from({length: 1000}, (_, i): [number, string] => [10 + (i % 7), `mx${i}.big.test`])

const ZONE: Parameters<typeof startDns>[0] = {
  'a.test': {A: ['127.10.1.1', '127.10.1.2'], AAAA: ['::1'], ttl: 7},
  'slow.test': {A: ['127.10.1.3'], delayMs: 1500},
  'silent.test': {silent: true},
  'nx.test': {nxdomain: true, soa: {ttl: 100, minimum: 30}},
  'nodata.test': {soa: {ttl: 20, minimum: 300}},
  'nosoa.test': {},
  'servfail.test': {servfail: true},
  'refused.test': {refused: true},
  'big.test': {MX: BIG, ttl: 50},
  'owner.test': {MX: [[10, 'mx.owner.test']], owner: 'other.test'},
  'mixed.test': {MX: [[10, 'good.mixed.test']], extra: [{type: 'MX', class: 'IN', name: 'evil.test', ttl: 60, data: {preference: 1, exchange: 'evil.mx.test'}}]},
  'alias.test': {CNAME: 'real.test', ttl: 5},
  'real.test': {MX: [[10, 'mx.real.test']], A: ['127.10.1.4'], ttl: 40},
  'loop1.test': {CNAME: 'loop2.test'},
  'loop2.test': {CNAME: 'loop1.test'},
  'junk.test': {A: ['127.10.1.9'], junkFirst: true},
}
for (let i = 0; i < 300; i++) ZONE[`n${i}.test`] = {A: [`127.10.2.${i % 250}`]}

let dns: Awaited<ReturnType<typeof startDns>>
beforeAll(async () => {
  dns = await startDns(ZONE, {host: HOST})
})
afterAll(async () => dns.close())

/** A client asking the fixture, closed after the test. */
const client = (options: Partial<DnsClientOptions> = {}) => keep(Promise.resolve(createDnsClient({servers: [{address: HOST, port: dns.port}], ...options})))
const code = (promise: Promise<unknown>) => promise.then(() => 'answered', (error: {code?: string}) => error.code)

/** The largest stats seen while `work` runs (sampled every few ms). */
async function peak(c: {stats(): DnsStats}, work: Promise<unknown>): Promise<DnsStats> {
  let max = c.stats()
  let done = false
  void work.finally(() => (done = true)).catch(() => {})
  while (!done) {
    const now = c.stats()
    max = {udp: Math.max(max.udp, now.udp), tcp: Math.max(max.tcp, now.tcp), inFlight: Math.max(max.inFlight, now.inFlight), queued: Math.max(max.queued, now.queued)}
    await sleep(2)
  }
  await work.catch(() => {})
  return max
}

describe('sockets are shared', () => {
  it('600 queries at once go over a handful of UDP sockets (rotated every 100 queries), not one each', async () => {
    const c = await client()
    const before = dns.sources.size
    const queries = Array.from({length: 300}, (_, i) => [c.query(`n${i}.test`, 'A'), c.query(`n${i}.test`, 'AAAA').catch(() => undefined)]).flat()
    const seen = await peak(c, Promise.all(queries))
    expect((await queries[0]) as unknown).toEqual({records: ['127.10.2.0'], ttl: 60})
    const ports = dns.sources.size - before
    expect(ports).toBeGreaterThanOrEqual(2) // rotation gives fresh source ports…
    expect(ports).toBeLessThanOrEqual(Math.ceil(600 / DNS_LIMITS.rotateAfter) + 1) // …but never one per query
    expect(seen.udp).toBeLessThanOrEqual(DNS_LIMITS.sockets - DNS_LIMITS.tcp)
    expect(c.stats()).toMatchObject({udp: 1, tcp: 0, inFlight: 0, queued: 0}) // retired sockets closed once drained
  })

  it('queries beyond the in-flight cap wait in order; sockets stay within the cap however many are asked', async () => {
    const c = await client({timeoutMs: 150, attempts: 1, limits: {inFlight: 5, sockets: 4, tcp: 1, rotateAfter: 1}})
    const queries = Array.from({length: 40}, (_, i) => code(c.query(i % 2 ? 'silent.test' : `n${i}.test`, 'A')))
    const seen = await peak(c, Promise.all(queries))
    expect(seen.inFlight).toBe(5)
    expect(seen.queued).toBeGreaterThan(20)
    expect(seen.udp).toBeLessThanOrEqual(3)
    const codes = await Promise.all(queries)
    expect(codes.filter((x) => x === 'ETIMEOUT')).toHaveLength(20)
    expect(codes.filter((x) => x === 'answered')).toHaveLength(20)
  })
})

describe('one caller leaving cancels nobody else', () => {
  it('two callers of the same slow name on one socket: the first aborts and is told at once, the second gets its answer', async () => {
    const c = await client({timeoutMs: 5000})
    const leaving = new AbortController()
    const t0 = performance.now()
    const first = code(c.query('slow.test', 'A', leaving.signal))
    const second = c.query('slow.test', 'A')
    await sleep(50)
    leaving.abort('cancelled')
    expect(await first).toBe('ECANCELLED')
    expect(performance.now() - t0).toBeLessThan(1000) // not the 1.5 s answer (generous: a busy machine)
    expect(await second).toEqual({records: ['127.10.1.3'], ttl: 60})
    expect(c.stats().udp).toBe(1)
  })

  it('an abandoned query keeps its slot until its own timeout, then frees it; a queued one leaves at once', async () => {
    const c = await client({timeoutMs: 200, attempts: 1, limits: {inFlight: 1}})
    const leaving = new AbortController()
    const sent = code(c.query('silent.test', 'A', leaving.signal))
    const queued = new AbortController()
    const waiting = code(c.query('a.test', 'A', queued.signal))
    const next = c.query('a.test', 'A')
    leaving.abort()
    queued.abort()
    expect(await sent).toBe('ECANCELLED')
    expect(await waiting).toBe('ECANCELLED')
    expect(c.stats()).toMatchObject({inFlight: 1}) // the abandoned query still holds the only slot
    expect(await next).toMatchObject({records: ['127.10.1.1', '127.10.1.2']})
  })
})

describe('answers', () => {
  it('an answer too long for UDP (1,000 MX records) is truncated and asked again over TCP', async () => {
    const c = await client()
    const tcpBefore = dns.tcpQueries.length
    const answer = await c.query('big.test', 'MX')
    expect(answer.records).toHaveLength(1000)
    expect(answer.records[999]).toEqual({preference: 10 + (999 % 7), exchange: 'mx999.big.test'})
    expect(answer.ttl).toBe(50)
    expect(dns.tcpQueries.slice(tcpBefore)).toEqual([{name: 'big.test', type: 'MX'}])
    expect(c.stats().tcp).toBe(0) // one connection per query, closed
  })

  it('TCP connections stay within their cap', async () => {
    const c = await client({limits: {tcp: 1}})
    const seen = await peak(c, Promise.all(Array.from({length: 4}, () => c.query('big.test', 'MX'))))
    expect(seen.tcp).toBe(1)
  })

  it('records whose owner is not the name asked (or its CNAME target) are ignored', async () => {
    const c = await client()
    expect(await code(c.query('owner.test', 'MX'))).toBe('ENODATA')
    expect((await c.query('mixed.test', 'MX')).records).toEqual([{preference: 10, exchange: 'good.mixed.test'}])
    expect(await c.query('ALIAS.test.', 'MX')).toEqual({records: [{preference: 10, exchange: 'mx.real.test'}], ttl: 5}) // the least TTL, the CNAME's
    expect(await c.query('alias.test', 'A')).toEqual({records: ['127.10.1.4'], ttl: 5})
    expect(await code(c.query('loop1.test', 'A'))).toBe('EBADRESP')
  })

  it.each([
    ['nx.test', 'ENOTFOUND', 30],
    ['nodata.test', 'ENODATA', 20],
    ['nosoa.test', 'ENODATA', undefined],
    ['unknown.test', 'ENOTFOUND', undefined],
    ['servfail.test', 'ESERVFAIL', undefined],
    ['refused.test', 'EREFUSED', undefined],
  ])('%s → %s (negative TTL %s: the lesser of the SOA TTL and MINIMUM)', async (name, want, ttl) => {
    const c = await client()
    const error = await c.query(name, 'A').catch((e) => e)
    expect([error.code, error.ttl]).toEqual([want, ttl])
  })

  it('no answer: ETIMEOUT after the tries (2 × the timeout)', async () => {
    const c = await client({timeoutMs: 150})
    const t0 = performance.now()
    expect(await code(c.query('silent.test', 'AAAA'))).toBe('ETIMEOUT')
    expect(performance.now() - t0).toBeGreaterThanOrEqual(290)
    expect(dns.queries.filter((q) => q.name === 'silent.test' && q.type === 'AAAA').length).toBeGreaterThanOrEqual(2)
  })

  it('junk before the answer (garbage, wrong ID, a query, another question, a copy from another port) is dropped', async () => {
    const c = await client()
    expect(await c.query('junk.test', 'A')).toEqual({records: ['127.10.1.9'], ttl: 60})
  })

  it('a closed DNS port: ECONNREFUSED at once (the kernel said so), not a timeout', async () => {
    const gone = dgram.createSocket('udp4')
    gone.bind(0, '127.10.1.55')
    await once(gone, 'listening')
    const port = gone.address().port
    await new Promise((resolve) => gone.close(() => resolve(undefined)))
    const c = await client({servers: [{address: '127.10.1.55', port}], timeoutMs: 2000})
    const t0 = performance.now()
    expect(await code(c.query('a.test', 'A'))).toBe('ECONNREFUSED')
    expect(performance.now() - t0).toBeLessThan(1500)
  })

  it('a server that only sends garbage: the query times out, nothing crashes', async () => {
    const server = dgram.createSocket('udp4')
    server.bind(0, '127.10.1.54')
    await once(server, 'listening')
    const junk = [Buffer.alloc(0), Buffer.alloc(11), Buffer.from('ffff81800001000100000000', 'hex'), Buffer.alloc(600, 0xc0)]
    server.on('message', (message, from) => {
      for (const j of junk) server.send(j, from.port, from.address)
      // The right ID and QR, a question that points forward: undecodable.
      server.send(Buffer.concat([message.subarray(0, 2), Buffer.from('81800001000000000000c0ff', 'hex')]), from.port, from.address)
    })
    const c = createDnsClient({servers: [{address: '127.10.1.54', port: server.address().port}], timeoutMs: 100})
    expect(await code(c.query('a.test', 'A'))).toBe('ETIMEOUT')
    await c.close()
    server.close()
  })
})

describe('lifetime', () => {
  it('close() ends the queries in flight (ECANCELLED) and leaves no socket', async () => {
    // The client's sockets are unref'd (they never hold a process): count descriptors, not handles.
    const udp = () => readdirSync('/proc/self/fd').length
    await sleep(10)
    const before = udp()
    const c = createDnsClient({servers: [{address: HOST, port: dns.port}]})
    await c.query('a.test', 'A')
    expect(udp()).toBe(before + 1)
    const pending = code(c.query('silent.test', 'A'))
    await c.close()
    expect(await pending).toBe('ECANCELLED')
    await until(() => udp() <= before)
    expect(await code(c.query('a.test', 'A'))).toBe('ECANCELLED')
  })

  it('a process that never closes its client still exits by itself once its queries are answered', async () => {
    const script = `const {createDnsClient} = await import(${JSON.stringify(fileURLToPath(new URL('../../dist/core/dns-client.js', import.meta.url)))})
      const c = createDnsClient({servers: [{address: '${HOST}', port: ${dns.port}}]})
      console.log(JSON.stringify(await c.query('a.test', 'A')))`
    const r = await runTimed(['--input-type=module', '-e', script], {limitMs: 10_000})
    expect([r.stdout.trim(), r.status]).toEqual(['{"records":["127.10.1.1","127.10.1.2"],"ttl":7}', 0])
  })

  it('out of descriptors: the query fails with EMFILE (not ECONNREFUSED, not an answer), and works again once they are back', async () => {
    const script = `import fs from 'node:fs'
      const {createDnsClient} = await import(${JSON.stringify(fileURLToPath(new URL('../../dist/core/dns-client.js', import.meta.url)))})
      const c = createDnsClient({servers: [{address: '${HOST}', port: ${dns.port}}], preload: true})
      await c.query('a.test', 'A') // loaded and working; now every descriptor is taken
      await c.close()
      const d = createDnsClient({servers: [{address: '${HOST}', port: ${dns.port}}], preload: true})
      await new Promise((r) => setTimeout(r, 50))
      const fds = []
      try { for (;;) fds.push(fs.openSync('/dev/null', 'r')) } catch {}
      const show = (p) => p.then((a) => a.records.join(), (e) => e.code)
      const starved = await Promise.all([show(d.query('a.test', 'A')), show(d.query('big.test', 'MX'))])
      for (const fd of fds) fs.closeSync(fd)
      console.log(JSON.stringify([...starved, await show(d.query('a.test', 'A'))]))
      await d.close()`
    const r = await runTimed(['-c', 'ulimit -n 64 && exec "$0" --input-type=module -e "$1"', process.execPath, script], {command: 'bash', limitMs: 15_000})
    expect([JSON.parse(r.stdout), r.status]).toEqual([['EMFILE', 'EMFILE', '127.10.1.1,127.10.1.2'], 0])
  })
})

describe('parseResolvConf', () => {
  it.each([
    ['', {servers: [{address: '127.0.0.1', port: 53}]}],
    ['# nothing\n; here\nsearch example.org\n', {servers: [{address: '127.0.0.1', port: 53}]}],
    ['nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n', {servers: [{address: '127.0.0.53', port: 53}]}],
    ['nameserver 10.0.0.1 # office\nnameserver ::1\nnameserver 2001:DB8::1\nnameserver 10.0.0.4\n', {servers: [{address: '10.0.0.1', port: 53}, {address: '::1', port: 53}, {address: '2001:db8::1', port: 53}]}],
    ['nameserver bogus\nnameserver fe80::1%eth0\nnameserver 010.0.0.1\nnameserver 10.0.0.2\n', {servers: [{address: '10.0.0.2', port: 53}]}],
    ['nameserver 10.0.0.1\noptions timeout:5 attempts:3 rotate\n', {servers: [{address: '10.0.0.1', port: 53}], timeoutMs: 5000, attempts: 3}],
    ['options timeout:99 attempts:9\noptions timeout:0 attempts:x\n', {servers: [{address: '127.0.0.1', port: 53}], timeoutMs: 1000, attempts: 5}],
    ['  nameserver\t127.0.0.2  \r\n', {servers: [{address: '127.0.0.2', port: 53}]}],
  ])('%j', (text, want) => {
    expect(parseResolvConf(text)).toEqual({timeoutMs: undefined, attempts: undefined, ...want})
  })
})
