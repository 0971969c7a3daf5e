// sharing() (serve's decisions, the DNS cache): one decision per key while it runs, reused for reuseMs, aborted
// when the last caller leaves; a caller that leaves alone is rejected at once.
import {describe, expect, it} from 'vitest'

import {sharing} from '../../src/core/sharing.js'

/** A work function whose runs are counted and settled by hand. */
function works() {
  const runs: Array<{signal: AbortSignal; resolve: (v: string) => void; reject: (e: unknown) => void}> = []
  const work = (signal: AbortSignal) => new Promise<string>((resolve, reject) => runs.push({signal, resolve, reject}))
  return {runs, work}
}
const tick = () => new Promise((resolve) => setImmediate(resolve))

describe('sharing', () => {
  it('callers of one key share one run while it runs; only the first is not "shared"', async () => {
    const clock = {ms: 0}
    const share = sharing<string>({now: () => clock.ms, reuseMs: () => 0, maxEntries: 10})
    const {runs, work} = works()
    const calls = Array.from({length: 100}, () => share('a.test ', work, new AbortController().signal))
    expect(runs).toHaveLength(1)
    runs[0].resolve('defer')
    const results = await Promise.all(calls)
    expect(results.filter((r) => !r.shared)).toEqual([{result: 'defer', shared: false}])
    expect(results.every((r) => r.result === 'defer')).toBe(true)
    // reuseMs 0: finished, it is forgotten: the next caller runs again.
    await tick()
    void share('a.test ', work, new AbortController().signal)
    expect(runs).toHaveLength(2)
  })

  it('a finished result is reused for reuseMs of the clock, then run again; other keys are their own', async () => {
    const clock = {ms: 0}
    const share = sharing<string>({now: () => clock.ms, reuseMs: (r) => (r === 'defer' ? 1000 : 0), maxEntries: 10})
    const {runs, work} = works()
    const first = share('a.test ', work, new AbortController().signal)
    runs[0].resolve('defer')
    await first
    await tick()
    clock.ms = 999
    expect(await share('a.test ', work, new AbortController().signal)).toEqual({result: 'defer', shared: true})
    void share('a.test 192.0.2.1', work, new AbortController().signal)
    expect(runs).toHaveLength(2)
    clock.ms = 1000
    void share('a.test ', work, new AbortController().signal)
    expect(runs).toHaveLength(3)
  })

  it('recall: nothing while the run runs, its result at once while reusable, nothing after reuseMs or when not reusable', async () => {
    const clock = {ms: 0}
    const share = sharing<string>({now: () => clock.ms, reuseMs: (r) => (r === 'defer' ? 1000 : 0), maxEntries: 10})
    const {runs, work} = works()
    const first = share('a.test ', work, new AbortController().signal)
    expect(share.recall('a.test ')).toBeUndefined()
    runs[0].resolve('defer')
    await first
    await tick()
    expect(share.recall('a.test ')).toBe('defer')
    expect(share.recall('b.test ')).toBeUndefined()
    clock.ms = 999
    expect(share.recall('a.test ')).toBe('defer')
    clock.ms = 1000
    expect(share.recall('a.test ')).toBeUndefined()
    const second = share('c.test ', work, new AbortController().signal)
    runs[1].resolve('dunno') // reuseMs 0: not reusable
    await second
    await tick()
    expect(share.recall('c.test ')).toBeUndefined()
    expect(runs).toHaveLength(2) // recall never runs the work
  })

  it('entries past reuse are dropped, oldest first, when a new one starts; the full table drops its oldest', async () => {
    const clock = {ms: 0}
    const share = sharing<string>({now: () => clock.ms, reuseMs: (r) => (r === 'short' ? 100 : 1000), maxEntries: 4})
    const {runs, work} = works()
    const settle = async (key: string, result: string) => {
      const call = share(key, work, new AbortController().signal)
      runs.at(-1)!.resolve(result)
      await call
      await tick()
    }
    await settle('a ', 'short')
    await settle('b ', 'short')
    await settle('c ', 'long')
    expect(share.size()).toBe(3)
    clock.ms = 100 // a and b are past reuse, c is not
    await settle('d ', 'long')
    expect(share.size()).toBe(2)
    expect(share.recall('c ')).toBe('long')
    await settle('e ', 'long')
    await settle('f ', 'long')
    await settle('g ', 'long') // full (4): the oldest, c, goes
    expect(share.size()).toBe(4)
    expect(share.recall('c ')).toBeUndefined()
    expect(share.recall('g ')).toBe('long')
  })

  it('a caller that leaves while others wait is rejected at once; the run goes on for them', async () => {
    const share = sharing<string>({now: () => 0, reuseMs: () => 0, maxEntries: 10})
    const {runs, work} = works()
    const leaving = new AbortController()
    const gone = share('a.test ', work, leaving.signal)
    const staying = share('a.test ', work, new AbortController().signal)
    leaving.abort('cancelled')
    await expect(gone).rejects.toBe('cancelled')
    expect(runs[0].signal.aborted).toBe(false)
    runs[0].resolve('dunno')
    expect(await staying).toEqual({result: 'dunno', shared: true})
  })

  it('the last caller to leave aborts the run with its reason; the next caller starts afresh', async () => {
    const share = sharing<string>({now: () => 0, reuseMs: () => 1000, maxEntries: 10})
    const {runs, work} = works()
    const a = new AbortController()
    const b = new AbortController()
    const calls = [share('a.test ', work, a.signal), share('a.test ', work, b.signal)]
    a.abort('cancelled')
    await expect(calls[0]).rejects.toBe('cancelled')
    expect(runs[0].signal.aborted).toBe(false)
    b.abort('timeout')
    await expect(calls[1]).rejects.toBe('timeout')
    expect(runs[0].signal.reason).toBe('timeout')
    runs[0].resolve('late') // an aborted run's result is not kept
    await tick()
    void share('a.test ', work, new AbortController().signal)
    expect(runs).toHaveLength(2)
  })

  it('a failed run rejects its callers and is forgotten; an already aborted caller starts nothing', async () => {
    const share = sharing<string>({now: () => 0, reuseMs: () => 1000, maxEntries: 10})
    const {runs, work} = works()
    const call = share('a.test ', work, new AbortController().signal)
    runs[0].reject(new Error('SERVFAIL'))
    await expect(call).rejects.toThrow('SERVFAIL')
    await tick()
    void share('a.test ', work, new AbortController().signal)
    expect(runs).toHaveLength(2)
    await expect(share('b.test ', work, AbortSignal.abort('cancelled'))).rejects.toBe('cancelled')
    expect(runs).toHaveLength(2)
  })

  it('holds at most maxEntries keys, dropping the oldest', async () => {
    const share = sharing<string>({now: () => 0, reuseMs: () => 1000, maxEntries: 2})
    const {runs, work} = works()
    for (const key of ['a', 'b', 'c']) void share(key, work, new AbortController().signal)
    for (const run of runs) run.resolve('x')
    await tick()
    void share('a', work, new AbortController().signal) // dropped: runs again
    void share('c', work, new AbortController().signal) // kept
    expect(runs).toHaveLength(4)
  })
})

describe('how long serve reuses a decision (reuseMs)', async () => {
  const {reuseMs, DECISION_REUSE_MS} = await import('../../src/cli/serve.js')
  const up = {server: 'mx1.example.org', note: 'available'}
  const down = {note: 'no more preferred MX is up (1 tried)'}
  const dnsOnly = {note: 'no such domain', probed: false}
  it.each([
    [up, {positive: 30, negative: 60}, DECISION_REUSE_MS],
    [up, {positive: 0, negative: 60}, 0],
    [up, {positive: 0.25, negative: 60}, 250],
    [down, {positive: 30, negative: 60}, DECISION_REUSE_MS],
    [down, {positive: 30, negative: 0}, 0],
    [up, undefined, 0],
    [down, undefined, 0],
    [dnsOnly, undefined, DECISION_REUSE_MS],
    [dnsOnly, {positive: 0, negative: 0}, DECISION_REUSE_MS],
  ])('%o with TTLs %o: %d ms', (decision, ttls, ms) => {
    expect(reuseMs(decision, ttls)).toBe(ms)
  })
})
