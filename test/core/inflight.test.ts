// Sharing attempts in flight: a fake attempt for the abort rules, real loopback sockets for
// "1000 concurrent callers → 1 connection".
import net from 'node:net'
import {describe, expect, it} from 'vitest'

import {attemptSmtp, type AttemptFn, type AttemptResult} from '../../src/core/attempt.js'
import {sharingAttempts} from '../../src/core/inflight.js'

/** A fake attempt: counts starts, resolves when told, or with its abort reason. */
function fake() {
  const started: Array<{address: string; port: number; signal: AbortSignal; finish: (r: AttemptResult) => void}> = []
  const attempt: AttemptFn = (address, port, signal) =>
    new Promise((resolve) => {
      started.push({address, port, signal, finish: resolve})
      signal.addEventListener('abort', () => resolve({outcome: signal.reason === 'cancelled' ? 'cancelled' : 'greeting-timeout'}), {once: true})
    })
  return {attempt, started}
}

const abortable = () => new AbortController()

describe('sharingAttempts', () => {
  it('concurrent calls for one address:port share one attempt and its result', async () => {
    const {attempt, started} = fake()
    const shared = sharingAttempts(attempt)
    const calls = [shared('192.0.2.1', 25, abortable().signal), shared('192.0.2.1', 25, abortable().signal), shared('192.0.2.1', 26, abortable().signal)]
    expect(started.map((s) => `${s.address}:${s.port}`)).toEqual(['192.0.2.1:25', '192.0.2.1:26'])
    started[0].finish({outcome: 'available', line: '220 hi'})
    started[1].finish({outcome: 'refused'})
    expect((await Promise.all(calls)).map((r) => r.outcome)).toEqual(['available', 'available', 'refused'])
  })

  it('after an attempt ends, the next call starts a new one (sharing is not caching)', async () => {
    const {attempt, started} = fake()
    const shared = sharingAttempts(attempt)
    const first = shared('::1', 25, abortable().signal)
    started[0].finish({outcome: 'refused'})
    await first
    const second = shared('::1', 25, abortable().signal)
    expect(started).toHaveLength(2)
    started[1].finish({outcome: 'available'})
    expect((await second).outcome).toBe('available')
  })

  it('a caller that aborts alone gets its own result at once; the others keep the attempt', async () => {
    const {attempt, started} = fake()
    const shared = sharingAttempts(attempt)
    const [a, b, c] = [abortable(), abortable(), abortable()]
    const results = [shared('192.0.2.1', 25, a.signal), shared('192.0.2.1', 25, b.signal), shared('192.0.2.1', 25, c.signal)]
    a.abort('cancelled')
    b.abort('timeout')
    expect(await results[0]).toEqual({outcome: 'cancelled'})
    expect((await results[1]).outcome).toBe('greeting-timeout')
    expect(started[0].signal.aborted).toBe(false)
    started[0].finish({outcome: 'available'})
    expect((await results[2]).outcome).toBe('available')
  })

  it.each(['timeout', 'cancelled'] as const)('when the last caller aborts (%s), the attempt is aborted with its reason', async (reason) => {
    const {attempt, started} = fake()
    const shared = sharingAttempts(attempt)
    const [a, b] = [abortable(), abortable()]
    const results = [shared('192.0.2.1', 25, a.signal), shared('192.0.2.1', 25, b.signal)]
    a.abort(reason === 'timeout' ? 'cancelled' : 'timeout')
    expect(started[0].signal.aborted).toBe(false)
    b.abort(reason)
    expect(started[0].signal.reason).toBe(reason)
    expect((await results[1]).outcome).toBe(reason === 'cancelled' ? 'cancelled' : 'greeting-timeout')
    // A caller arriving now starts afresh instead of joining the aborted attempt.
    void shared('192.0.2.1', 25, abortable().signal)
    expect(started).toHaveLength(2)
  })

  it('a caller already aborted starts nothing', async () => {
    const {attempt, started} = fake()
    const controller = abortable()
    controller.abort('cancelled')
    expect(await sharingAttempts(attempt)('192.0.2.1', 25, controller.signal)).toEqual({outcome: 'cancelled'})
    expect(started).toHaveLength(0)
  })

  it('two tables share nothing (no module-level state)', () => {
    const {attempt, started} = fake()
    void sharingAttempts(attempt)('192.0.2.1', 25, abortable().signal)
    void sharingAttempts(attempt)('192.0.2.1', 25, abortable().signal)
    expect(started).toHaveLength(2)
    for (const s of started) s.finish({outcome: 'refused'})
  })

  it('1000 concurrent callers against a real SMTP server that greets after 300 ms → 1 connection', async () => {
    let connections = 0
    const server = net.createServer((socket) => {
      connections++
      socket.on('error', () => {}).resume()
      setTimeout(() => socket.end('220 primary.example ESMTP\r\n'), 300)
    })
    await new Promise<void>((r) => server.listen(0, '127.0.12.10', r))
    const {port} = server.address() as net.AddressInfo
    try {
      const shared = sharingAttempts(attemptSmtp)
      const results = await Promise.all(Array.from({length: 1000}, () => shared('127.0.12.10', port, abortable().signal)))
      expect(new Set(results.map((r) => r.outcome))).toEqual(new Set(['available']))
      expect(connections).toBe(1)
    } finally {
      await new Promise((r) => server.close(r))
    }
  })
})
