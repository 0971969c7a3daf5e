// SPEC §6: no run leaves a process, socket or timer behind; the process ends as soon as
// the answer is known. Checked in-process (active handles, listeners) and on the binary.
import {getEventListeners} from 'node:events'
import {afterEach, describe, expect, it} from 'vitest'

import {attemptSmtp, type AttemptFn} from '../src/core/attempt.js'
import {check, type CheckOptions} from '../src/core/check.js'
import {parseServerList} from '../src/core/grammar.js'
import type {Resolver} from '../src/core/resolve.js'
import {closedPort, startBlackhole, startSmtp, until} from '../fixtures/smtp.js'
import {runCli} from './cli.js'

const open: Array<{close: () => Promise<void>}> = []
afterEach(async () => {
  for (const s of open.splice(0)) await s.close()
})
async function keep<T extends {close: () => Promise<void>}>(server: Promise<T>): Promise<T> {
  const s = await server
  open.push(s)
  return s
}

/** Active handles by kind (sockets, servers, timers, …), as Node reports them. */
function handles(): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const kind of process.getActiveResourcesInfo()) counts[kind] = (counts[kind] ?? 0) + 1
  return counts
}
/** Kinds of which there are more now than in `baseline` (handles closing may still show there). */
function added(baseline: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(handles()).filter(([kind, n]) => n > (baseline[kind] ?? 0)))
}
/** Wait (bounded) until no handle is left beyond `baseline`; then none may be. */
async function backTo(baseline: Record<string, number>) {
  // Timers go at once (one tick); sockets as soon as their close has gone through.
  await new Promise((resolve) => setImmediate(resolve))
  expect(added(baseline).Timeout).toBeUndefined()
  await until(() => Object.keys(added(baseline)).length === 0, 2000).catch(() => {})
  expect(added(baseline)).toEqual({})
}
const PROCESS_EVENTS = ['exit', 'SIGINT', 'SIGTERM', 'uncaughtException', 'unhandledRejection', 'warning'] as const
const processListeners = () => PROCESS_EVENTS.map((e) => process.listenerCount(e))

/** A resolver that knows one name; everything else is NXDOMAIN. */
const fakeResolver = (addresses: string[]): Resolver => async (name) =>
  name === 'mx.test' ? {outcome: 'resolved', addresses} : {outcome: 'nxdomain', addresses: []}

async function runCheck(words: string[], port: number, extra: Partial<CheckOptions> = {}, resolver: Resolver = fakeResolver([])) {
  const options: CheckOptions = {entries: parseServerList(words), timeoutMs: 5000, port, attemptDelayMs: 250, sequential: false, ...extra}
  return check(options, {resolver, attempt: attemptSmtp, now: () => performance.now()})
}

describe('in-process: after check() no socket or timer is left', () => {
  it('available (220, QUIT sent)', async () => {
    const smtp = await keep(startSmtp({greeting: '220 ok\r\n'}))
    const baseline = handles()
    const report = await runCheck(['127.0.0.1'], smtp.port)
    expect(report.winner?.name).toBe('127.0.0.1')
    await backTo(baseline)
    expect(smtp.sent()).toEqual(['QUIT\r\n'])
  })

  it('refused', async () => {
    const port = await closedPort()
    const baseline = handles()
    const report = await runCheck(['127.0.0.1'], port)
    expect(report.servers[0].attempts[0].outcome).toBe('refused')
    await backTo(baseline)
  })

  it('blackhole: connect-timeout at the budget', async () => {
    const hole = await keep(startBlackhole('127.0.0.1'))
    const baseline = handles()
    const report = await runCheck(['127.0.0.1'], hole.port, {timeoutMs: 400})
    expect(report.servers[0].attempts[0].outcome).toBe('connect-timeout')
    await backTo(baseline)
  })

  it('a silent address loses the race to a greeting one (cancelled loser)', async () => {
    const silent = await keep(startSmtp({host: '127.0.0.2'}))
    const good = await keep(startSmtp({host: '127.0.0.1', port: silent.port, greeting: '220 ok\r\n'}))
    const baseline = handles()
    const report = await runCheck(['mx.test'], silent.port, {attemptDelayMs: 50}, fakeResolver(['127.0.0.2', '127.0.0.1']))
    const outcomes = Object.fromEntries(report.servers[0].attempts.map((a) => [a.address, a.outcome]))
    expect(outcomes).toEqual({'127.0.0.2': 'cancelled', '127.0.0.1': 'available'})
    await backTo(baseline)
    expect(silent.connections.every((c) => c.closed)).toBe(true)
    expect(silent.sent()).toEqual([''])
    expect(good.sent()).toEqual(['QUIT\r\n'])
  })

  it('an available server wins while another candidate stays silent: the silent one is torn down too', async () => {
    const good = await keep(startSmtp({host: '127.0.0.1', greeting: '220 ok\r\n'}))
    const silent = await keep(startSmtp({host: '127.0.0.2', port: good.port}))
    const baseline = handles()
    const report = await runCheck(['127.0.0.2', '127.0.0.1'], good.port, {timeoutMs: 30_000})
    expect(report.winner?.name).toBe('127.0.0.1')
    await backTo(baseline)
    expect(silent.connections.every((c) => c.closed)).toBe(true)
  })
})

describe('in-process: 1000 sequential probes leak nothing', () => {
  it('sockets, timers, process and AbortSignal listeners are back to where they were', async () => {
    const greets = await keep(startSmtp({greeting: '220 ok\r\n'}))
    const teaser = await keep(startSmtp({greeting: '220-wait\r\n'}))
    const rejects = await keep(startSmtp({greeting: '554 no\r\n'}))
    const refused = await closedPort()
    const warnings: Error[] = []
    const onWarning = (w: Error) => warnings.push(w)
    process.on('warning', onWarning)
    const baseline = handles()
    const listeners = processListeners()
    // One long-lived signal for every probe, as a run's budget is: each attempt must remove its listener.
    const parent = new AbortController()
    const probe: AttemptFn = attemptSmtp
    const expected = [['available', greets.port], ['available', teaser.port], ['rejected', rejects.port], ['refused', refused]] as const
    const seen: Record<string, number> = {}
    for (let i = 0; i < 1000; i++) {
      const [outcome, port] = expected[i % expected.length]
      const result = await probe('127.0.0.1', port, parent.signal)
      expect(result.outcome).toBe(outcome)
      seen[outcome] = (seen[outcome] ?? 0) + 1
    }
    expect(seen).toEqual({available: 500, rejected: 250, refused: 250})
    expect(getEventListeners(parent.signal, 'abort')).toHaveLength(0)
    expect(processListeners()).toEqual(listeners)
    await until(() => [greets, teaser, rejects].every((s) => s.connections.every((c) => c.closed)), 5000)
    expect(greets.connections).toHaveLength(250)
    await backTo(baseline)
    process.off('warning', onWarning)
    expect(warnings.map((w) => w.name)).toEqual([])
  })
})

describe('the binary exits as soon as the answer is known', () => {
  it('prints the available server and exits at once, though another candidate is silent under a 30 s budget', async () => {
    const good = await keep(startSmtp({host: '127.0.0.1', greeting: '220 ok\r\n'}))
    const silent = await keep(startSmtp({host: '127.0.0.2', port: good.port}))
    const r = await runCli(['--no-cache', '--timeout', '30', '--port', String(good.port), '127.0.0.2', '127.0.0.1'], {limitMs: 20_000})
    expect(r.stdout).toBe('127.0.0.1\n')
    expect(r.status).toBe(1)
    // Process start included; generous. A leftover handle would hold it to the 30 s budget.
    expect(r.ms).toBeLessThan(5000)
    await until(() => silent.connections.length === 1 && silent.connections[0].closed, 2000)
  })

  it('exits at once when every candidate failed (refused, rejected), not at the budget', async () => {
    const rejects = await keep(startSmtp({host: '127.0.0.1', greeting: '421 busy\r\n'}))
    const r = await runCli(['--no-cache', '--timeout', '30', '--port', String(rejects.port), '127.0.0.1', '127.0.0.3'], {limitMs: 20_000})
    expect(r).toMatchObject({stdout: '', stderr: '', status: 0})
    expect(r.ms).toBeLessThan(5000)
  })
})
