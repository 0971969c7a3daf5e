// Background revalidation (SPEC §11 freshness) on an injected clock and a controllable
// attempt: a stale available answer is served and re-probed, one probe at a time per
// address; the probe's outcome replaces the answer; a fresh one is not probed; the signal
// ends probes and teaches nothing.
import {describe, expect, it} from 'vitest'

import type {AttemptResult} from '../../src/core/attempt.js'
import {MemoryCache} from '../../src/core/cache.js'
import {revalidating} from '../../src/core/revalidate.js'

function setup(afterMs = 2000) {
  let wall = 1_000_000
  const cache = new MemoryCache({positive: 30, negative: 60}, () => wall, 10_000)
  const calls: Array<{address: string; port: number; signal: AbortSignal; answer: (r: AttemptResult) => void}> = []
  const controller = new AbortController()
  const wrapped = revalidating(cache, {
    attempt: (address, port, signal) => new Promise((answer) => calls.push({address, port, signal, answer})),
    now: () => 0,
    afterMs,
    budgetMs: 0,
    signal: controller.signal,
  })
  cache.entries.set('127.0.0.10:25', {state: 'available', seenAt: wall})
  return {cache, wrapped, calls, controller, advance: (ms: number) => void (wall += ms)}
}

const settle = () => new Promise((resolve) => setImmediate(resolve))

describe('revalidating', () => {
  it('a fresh available answer is served without a probe', () => {
    const {wrapped, calls, advance} = setup()
    advance(1999)
    expect(wrapped.lookup('127.0.0.10', 25)).toBe('available')
    expect(calls).toHaveLength(0)
  })

  it('a stale one is served and re-probed once however often it is asked; a refusal makes it unavailable', async () => {
    const {wrapped, calls, advance} = setup()
    advance(2000)
    for (let i = 0; i < 50; i++) expect(wrapped.lookup('127.0.0.10', 25)).toBe('available')
    expect(calls).toHaveLength(1)
    expect(calls[0]).toMatchObject({address: '127.0.0.10', port: 25})
    calls[0].answer({outcome: 'refused', error: 'ECONNREFUSED'})
    await settle()
    expect(wrapped.lookup('127.0.0.10', 25)).toBe('unavailable')
    expect(calls).toHaveLength(1)
  })

  it('a probe that finds it up refreshes it: no new probe for another afterMs', async () => {
    const {wrapped, calls, advance} = setup()
    advance(5000)
    wrapped.lookup('127.0.0.10', 25)
    calls[0].answer({outcome: 'available', line: '220 ok'})
    await settle()
    advance(1000)
    expect(wrapped.lookup('127.0.0.10', 25)).toBe('available')
    expect(calls).toHaveLength(1)
    advance(1000)
    wrapped.lookup('127.0.0.10', 25)
    expect(calls).toHaveLength(2)
  })

  it('other addresses are probed independently; an unavailable or unknown one is never re-probed', () => {
    const {cache, wrapped, calls, advance} = setup()
    cache.entries.set('127.0.0.11:25', {state: 'available', seenAt: 1_000_000})
    cache.entries.set('127.0.0.12:25', {state: 'unavailable', seenAt: 1_000_000})
    advance(3000)
    for (const address of ['127.0.0.10', '127.0.0.11', '127.0.0.12', '127.0.0.13']) wrapped.lookup(address, 25)
    expect(calls.map((c) => c.address)).toEqual(['127.0.0.10', '127.0.0.11'])
  })

  it('the signal aborts probes in flight (cancelled: nothing learnt) and none starts after it', async () => {
    const {wrapped, calls, advance, controller} = setup()
    advance(3000)
    wrapped.lookup('127.0.0.10', 25)
    controller.abort()
    expect(calls[0].signal.aborted).toBe(true)
    calls[0].answer({outcome: 'cancelled'})
    await settle()
    expect(wrapped.lookup('127.0.0.10', 25)).toBe('available')
    expect(calls).toHaveLength(1)
  })
})
