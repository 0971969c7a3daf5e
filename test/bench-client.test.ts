// The bench's policy load client (bench/policy-client.js) against the policy server with a
// fake decide (fixtures/policy-server.js), briefly: so that `npm run bench`'s tooling keeps
// working. Not a benchmark: only generous bounds.
import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {load, quantile} from '../bench/policy-client.js'
import {startTimed} from '../fixtures/spawn.js'

const FIXTURE = new URL('../fixtures/policy-server.js', import.meta.url).pathname
let server: ReturnType<typeof startTimed>
let port = 0

beforeAll(async () => {
  const file = join(mkdtempSync(join(tmpdir(), 'smtpdcheck-bench-client-')), 'scenario.json')
  writeFileSync(file, JSON.stringify({
    listen: ['inet:127.0.30.101:0'],
    timeoutMs: 5000,
    maxConnections: 6,
    decisions: {'fast.example': {server: 'mx1.fast.example'}, 'slow.example': {delayMs: 40}},
  }))
  server = startTimed([FIXTURE, file], {limitMs: 60_000})
  for (let i = 0; i < 250 && !server.output.stdout.includes('ready\n'); i++) await sleep(20)
  port = Number(/^listening inet:127\.0\.30\.101:(\d+)$/m.exec(server.output.stdout)?.[1])
  expect(port).toBeGreaterThan(0)
})
afterAll(async () => {
  server.child.kill('SIGTERM')
  await server.done
})

describe('bench/policy-client.js', () => {
  it('sends connections × requests in turn on reused connections and counts every reply', async () => {
    const r = await load({host: '127.0.30.101', port, localAddress: '127.0.30.102', connections: 4, requests: 50, domain: 'fast.example', limitMs: 20_000})
    expect(r).toMatchObject({answered: 200, expected: 200, errors: {}, replies: {'action=DEFER_IF_PERMIT 4.7.1 Please use server mx1.fast.example': 200}})
    expect(r.perSecond).toBeGreaterThan(0)
    expect(r.p50).toBeLessThanOrEqual(r.p99)
    expect(r.p99).toBeLessThanOrEqual(r.max)
    // One connection per client connection, not one per request: the server's log has 200 decisions.
    expect(server.output.stderr.match(/domain=fast\.example decision=defer/g)?.length).toBeGreaterThanOrEqual(200)
  })

  it('measures each request from its send: a 40 ms decision shows as ≥ 40 ms at p50, and 2 connections × 5 in turn take ≥ 200 ms', async () => {
    const r = await load({host: '127.0.30.101', port, connections: 2, requests: 5, domain: 'slow.example', limitMs: 20_000})
    expect(r.answered).toBe(10)
    expect(r.replies).toEqual({'action=DUNNO': 10})
    expect(r.p50).toBeGreaterThanOrEqual(39)
    expect(r.ms).toBeGreaterThanOrEqual(5 * 39) // no pipelining: the 5 requests of one connection are in turn
  })

  it('counts what the server never answered (connections over its --max-connections are closed) and stops by itself', async () => {
    const r = await load({host: '127.0.30.101', port, connections: 10, requests: 3, domain: 'slow.example', limitMs: 20_000})
    expect(r.answered).toBeLessThan(30)
    expect(r.expected).toBe(30)
    expect(Object.values(r.errors as Record<string, number>).reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(4)
  })

  it('ends at its time limit with what was answered so far', async () => {
    const started = performance.now()
    const r = await load({host: '127.0.30.101', port, connections: 1, requests: 1000, domain: 'slow.example', limitMs: 300})
    expect(performance.now() - started).toBeLessThan(3000)
    expect(r.answered).toBeLessThan(1000)
    expect(r.errors).toEqual({'time limit': 1})
  })

  it('refuses a target that is not loopback, before connecting', async () => {
    // 0.0.0.0 would reach this host: a guard that let it through would connect, not throw.
    await expect(load({host: '0.0.0.0', port: 1, connections: 1, requests: 1})).rejects.toThrow(/not a loopback address/)
  })

  it('quantile is the nearest rank', () => {
    const sorted = Array.from({length: 100}, (_, i) => i + 1)
    expect([quantile(sorted, 0.5), quantile(sorted, 0.99), quantile(sorted, 1), quantile([7], 0.99)]).toEqual([50, 99, 100, 7])
  })
})
