// One attempt against real loopback sockets (SPEC §4): verdict, what the server received,
// and that the connection is always torn down.
import type net from 'node:net'
import {describe, expect, it} from 'vitest'

import {attemptSmtp, type AbortReason} from '../../src/core/attempt.js'
import {closedPort, startBlackhole, startSmtp, until} from '../../fixtures/smtp.js'
import {closedAfterEach} from '../fixtures.js'

const keep = closedAfterEach()

type Greet = {greeting?: string | Buffer; greet?: (socket: net.Socket) => void; host?: string}

/** Start a fixture, attempt it (aborted with `abort` after `abortMs`), wait until the fixture sees the close. */
async function attempt(server: Greet, options: {abortMs?: number; abort?: AbortReason} = {}) {
  const smtp = await keep(startSmtp(server))
  const controller = new AbortController()
  const timer = setTimeout(() => controller.abort(options.abort ?? 'timeout'), options.abortMs ?? 5000)
  const started = performance.now()
  const result = await attemptSmtp(smtp.host, smtp.port, controller.signal)
  const ms = performance.now() - started
  clearTimeout(timer)
  await until(() => smtp.connections.length === 1 && smtp.connections[0].closed)
  return {result, ms, sent: smtp.sent(), connections: smtp.connections.length}
}

describe('attemptSmtp against a fixture server', () => {
  it('"220 " is available; the server receives exactly QUIT CR LF, then the close', async () => {
    const r = await attempt({greeting: '220 mx.example ESMTP\r\n'})
    expect(r.result).toEqual({outcome: 'available', line: '220 mx.example ESMTP'})
    expect(r.sent).toEqual(['QUIT\r\n'])
  })

  it('a bare-LF "220" line is available and gets QUIT', async () => {
    const r = await attempt({greeting: '220\n'})
    expect(r.result).toEqual({outcome: 'available', line: '220'})
    expect(r.sent).toEqual(['QUIT\r\n'])
  })

  it('a greeting split over several packets is put together', async () => {
    const r = await attempt({
      greet: (socket) => {
        socket.write('22')
        setTimeout(() => socket.write('0 slow'), 30)
        setTimeout(() => socket.write('ly\r'), 60)
        setTimeout(() => socket.write('\n'), 90)
      },
    })
    expect(r.result).toEqual({outcome: 'available', line: '220 slowly'})
    expect(r.sent).toEqual(['QUIT\r\n'])
  })

  it('"220-" is available and the server receives nothing at all (greeting-delay checks)', async () => {
    const r = await attempt({greeting: '220-mx.example first line\r\n'})
    expect(r.result).toEqual({outcome: 'available', line: '220-mx.example first line'})
    expect(r.sent).toEqual([''])
  })

  it('"220-" followed at once by the final line: still nothing is sent', async () => {
    const r = await attempt({greeting: '220-one\r\n220 two\r\n'})
    expect(r.result.outcome).toBe('available')
    expect(r.sent).toEqual([''])
  })

  it.each([
    ['421 mx.example Service not available\r\n', 421],
    ['554 No SMTP service here\r\n', 554],
  ])('%j is rejected with its code; nothing is sent', async (greeting, code) => {
    const r = await attempt({greeting})
    expect(r.result).toEqual({outcome: 'rejected', code, line: greeting.trimEnd()})
    expect(r.sent).toEqual([''])
  })

  it.each(['SSH-2.0-OpenSSH_9.6\r\n', '2200 four digits\r\n', 'HTTP/1.1 400 Bad Request\r\n\r\n'])('%j is not-smtp', async (greeting) => {
    const r = await attempt({greeting})
    expect(r.result).toMatchObject({outcome: 'not-smtp', line: greeting.split('\r\n')[0]})
    expect(r.sent).toEqual([''])
  })

  it('a 512-octet line is accepted', async () => {
    const line = `220 ${'x'.repeat(508)}`
    const r = await attempt({greeting: `${line}\r\n`})
    expect(r.result).toEqual({outcome: 'available', line})
  })

  it('a 513-octet line is not-smtp, known without waiting for its end', async () => {
    const r = await attempt({greeting: `220 ${'x'.repeat(509)}`})
    expect(r.result.outcome).toBe('not-smtp')
    expect(r.result.line).toHaveLength(512)
    expect(r.sent).toEqual([''])
  })

  it('a flood without a line end ends at the 513th octet', async () => {
    const r = await attempt({greeting: Buffer.alloc(1 << 20, 0x41)})
    expect(r.result.outcome).toBe('not-smtp')
    expect(r.ms).toBeLessThan(3000)
  })

  it('close before a complete line is closed', async () => {
    const r = await attempt({greet: (socket) => socket.end('220 half a line')})
    expect(r.result).toMatchObject({outcome: 'closed'})
  })

  it('close before any byte is closed', async () => {
    const r = await attempt({greet: (socket) => socket.end()})
    expect(r.result).toMatchObject({outcome: 'closed'})
  })

  it('a reset before any byte is closed', async () => {
    const r = await attempt({greet: (socket) => socket.resetAndDestroy()})
    expect(r.result.outcome).toBe('closed')
  })

  it('connected but silent: greeting-timeout when the budget runs out; the server receives nothing', async () => {
    const r = await attempt({}, {abortMs: 300})
    expect(r.result).toEqual({outcome: 'greeting-timeout'})
    expect(r.ms).toBeGreaterThanOrEqual(250)
    expect(r.ms).toBeLessThan(3000)
    expect(r.sent).toEqual([''])
  })

  it('torn down because another attempt won: cancelled', async () => {
    const r = await attempt({}, {abortMs: 100, abort: 'cancelled'})
    expect(r.result).toEqual({outcome: 'cancelled'})
  })

  it('works over IPv6 (::1)', async () => {
    const r = await attempt({host: '::1', greeting: '220 v6\r\n'})
    expect(r.result).toEqual({outcome: 'available', line: '220 v6'})
    expect(r.sent).toEqual(['QUIT\r\n'])
  })
})

describe('attemptSmtp without a server', () => {
  it('connection refused', async () => {
    const port = await closedPort('127.0.0.1')
    const result = await attemptSmtp('127.0.0.1', port, new AbortController().signal)
    expect(result).toEqual({outcome: 'refused', error: 'ECONNREFUSED'})
  })

  it('a blackholed address runs out the budget: connect-timeout, within a bound', async () => {
    const hole = await keep(startBlackhole('127.0.0.1'))
    const started = performance.now()
    const result = await attemptSmtp(hole.host, hole.port, AbortSignal.timeout(400))
    const ms = performance.now() - started
    // AbortSignal.timeout aborts with a DOMException: anything but 'cancelled' is the budget.
    expect(result).toEqual({outcome: 'connect-timeout'})
    expect(ms).toBeGreaterThanOrEqual(350)
    expect(ms).toBeLessThan(3000)
  })

  it('an already aborted signal answers at once', async () => {
    const port = await closedPort('127.0.0.1')
    const controller = new AbortController()
    controller.abort('timeout')
    expect(await attemptSmtp('127.0.0.1', port, controller.signal)).toEqual({outcome: 'connect-timeout'})
  })
})
