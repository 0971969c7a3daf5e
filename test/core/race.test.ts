// Happy Eyeballs on the greeting (SPEC §4): interleaving (pure) and the race over real
// loopback sockets (several 127.0.0.x addresses and ::1 on one port).
import {describe, expect, it} from 'vitest'

import {attemptSmtp} from '../../src/core/attempt.js'
import {interleaveFamilies, raceAddresses, type RaceOptions} from '../../src/core/race.js'
import {closedPort, startBlackhole, startSmtp, until} from '../../fixtures/smtp.js'
import {closedAfterEach} from '../fixtures.js'

const keep = closedAfterEach()
const smtp = (options: Parameters<typeof startSmtp>[0]) => keep(startSmtp(options))

/** Run one race with the real attempt; returns the result, start times by address and the elapsed ms. */
async function race(addresses: string[], port: number, extra: Partial<RaceOptions> = {}, budgetMs = 10_000) {
  const t0 = performance.now()
  const elapsed = () => Math.round(performance.now() - t0)
  const started = new Map<string, number>()
  const signal = AbortSignal.timeout(budgetMs)
  const result = await raceAddresses(addresses, {
    port,
    attemptDelayMs: 250,
    signal,
    attempt: attemptSmtp,
    elapsed,
    onAttemptStart: (address) => started.set(address, elapsed()),
    ...extra,
  })
  return {result, started, ms: elapsed()}
}

const outcomes = (result: Awaited<ReturnType<typeof race>>['result']) =>
  Object.fromEntries(result.attempts.map((a) => [a.address, a.outcome]))

describe('interleaveFamilies (RFC 8305 §4)', () => {
  it('alternates families, starting with the first address family, each keeping its order', () => {
    expect(interleaveFamilies(['::1', '::2', '::3', '10.0.0.1', '10.0.0.2'])).toEqual(['::1', '10.0.0.1', '::2', '10.0.0.2', '::3'])
    expect(interleaveFamilies(['10.0.0.1', '10.0.0.2', '::1', '::2'])).toEqual(['10.0.0.1', '::1', '10.0.0.2', '::2'])
    expect(interleaveFamilies(['10.0.0.2', '::1', '10.0.0.1'])).toEqual(['10.0.0.2', '::1', '10.0.0.1'])
  })

  it('leaves a single family alone and an empty list empty', () => {
    expect(interleaveFamilies(['10.0.0.3', '10.0.0.1', '10.0.0.2'])).toEqual(['10.0.0.3', '10.0.0.1', '10.0.0.2'])
    expect(interleaveFamilies(['::2', '::1'])).toEqual(['::2', '::1'])
    expect(interleaveFamilies([])).toEqual([])
  })

  it('is a permutation: nothing lost, nothing added', () => {
    const input = ['::1', '127.0.0.1', '127.0.0.2', '127.0.0.3', '::2', '2001:db8::1']
    expect([...interleaveFamilies(input)].sort()).toEqual([...input].sort())
  })
})

describe('raceAddresses over real sockets', () => {
  it('staggers: the next address starts about attempt-delay after a silent first one, which is then torn down', async () => {
    const silent = await smtp({host: '127.0.0.41'})
    const live = await smtp({host: '127.0.0.42', port: silent.port, greeting: '220 live ESMTP\r\n'})
    const {result, started, ms} = await race([silent.host, live.host], silent.port, {attemptDelayMs: 300})
    expect(result.winner?.address).toBe(live.host)
    const gap = started.get(live.host)! - started.get(silent.host)!
    expect(gap).toBeGreaterThanOrEqual(280)
    expect(gap).toBeLessThan(2000)
    expect(ms).toBeLessThan(5000) // far below the 10 s budget
    expect(outcomes(result)).toEqual({[silent.host]: 'cancelled', [live.host]: 'available'})
    await until(() => silent.connections.length === 1 && silent.connections[0].closed)
    await until(() => live.sent()[0] === 'QUIT\r\n')
  })

  it('starts the next address at once when the current one fails (refused ×3: unavailable far before the budget)', async () => {
    const port = await closedPort('127.0.0.43')
    // A delay of 2 s between starts would make this take ≥ 4 s if failures did not move on.
    const {result, ms} = await race(['127.0.0.43', '127.0.0.44', '127.0.0.45'], port, {attemptDelayMs: 2000})
    expect(result.winner).toBeUndefined()
    expect(result.attempts.map((a) => a.outcome)).toEqual(['refused', 'refused', 'refused'])
    expect(ms).toBeLessThan(1500)
  })

  it('an earlier attempt still wins after a later one started (greets at 400 ms; the second is silent)', async () => {
    const slow = await smtp({host: '127.0.0.46', greet: (socket) => setTimeout(() => socket.write('220 slow\r\n'), 400)})
    const silent = await smtp({host: '127.0.0.47', port: slow.port})
    const {result, started} = await race([slow.host, silent.host], slow.port, {attemptDelayMs: 100})
    expect(result.winner?.address).toBe(slow.host)
    expect(result.winner?.line).toBe('220 slow')
    // The second attempt really was under way before the first answered.
    expect(started.get(silent.host)!).toBeLessThan(result.winner!.endMs)
    expect(silent.connections).toHaveLength(1)
    expect(outcomes(result)[silent.host]).toBe('cancelled')
    await until(() => silent.connections[0].closed)
  })

  it('tears down every loser, IPv4 and IPv6, when a third address greets', async () => {
    const v6 = await smtp({host: '::1'})
    const v4 = await smtp({host: '127.0.0.48', port: v6.port})
    const live = await smtp({host: '127.0.0.49', port: v6.port, greeting: '220-first line of a multi-line greeting\r\n'})
    const {result} = await race([v6.host, v4.host, live.host], v6.port, {attemptDelayMs: 50})
    expect(result.winner?.address).toBe(live.host)
    expect(outcomes(result)).toEqual({'::1': 'cancelled', [v4.host]: 'cancelled', [live.host]: 'available'})
    await until(() => [v6, v4, live].every((s) => s.connections.length === 1 && s.connections[0].closed))
    expect(live.sent()).toEqual(['']) // after 220- nothing is sent
  })

  it('an address that accepts TCP but never greets does not hold up one that greets (blackholed first too)', async () => {
    const hole = await keep(startBlackhole('127.0.0.50'))
    const silent = await smtp({host: '127.0.0.51', port: hole.port})
    const live = await smtp({host: '127.0.0.52', port: hole.port, greeting: '220 ok\r\n'})
    const {result, ms} = await race([hole.host, silent.host, live.host], hole.port, {attemptDelayMs: 100})
    expect(result.winner?.address).toBe(live.host)
    expect(ms).toBeLessThan(3000) // the budget is 10 s
    expect(outcomes(result)).toEqual({[hole.host]: 'cancelled', [silent.host]: 'cancelled', [live.host]: 'available'})
  })

  it('when the budget runs out, pending attempts end as connect-timeout or greeting-timeout', async () => {
    const hole = await keep(startBlackhole('127.0.0.53'))
    const silent = await smtp({host: '127.0.0.54', port: hole.port})
    const {result, ms} = await race([hole.host, silent.host], hole.port, {attemptDelayMs: 50}, 400)
    expect(result.winner).toBeUndefined()
    expect(outcomes(result)).toEqual({[hole.host]: 'connect-timeout', [silent.host]: 'greeting-timeout'})
    expect(ms).toBeGreaterThanOrEqual(390)
    expect(ms).toBeLessThan(2000)
    await until(() => silent.connections[0]?.closed)
  })

  it('skips what the cache remembers: unavailable moves on, available wins without a connection', async () => {
    const live = await smtp({host: '127.0.0.55', greeting: '220 ok\r\n'})
    const remembered = (address: string) => (address === '127.0.0.56' ? 'unavailable' : address === '127.0.0.57' ? 'available' : undefined)
    const skip = await race(['127.0.0.56', live.host], live.port, {remembered})
    expect(skip.result.attempts.map((a) => [a.address, a.outcome, a.cachedAs])).toEqual([
      ['127.0.0.56', 'cached', 'unavailable'],
      [live.host, 'available', undefined],
    ])
    const hit = await race(['127.0.0.57', live.host], live.port, {remembered})
    expect(hit.result.winner).toMatchObject({address: '127.0.0.57', outcome: 'cached', cachedAs: 'available'})
    expect(live.connections).toHaveLength(1)
  })
})
