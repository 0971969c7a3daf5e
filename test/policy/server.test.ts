// The policy server through real sockets on 127.0.12.1 (port 0), with a controllable fake
// decide: ordering, half-close, the hostile corpus, slowloris, idle clients, limits,
// deadlines, graceful close.
import {randomBytes} from 'node:crypto'
import {setTimeout as sleep} from 'node:timers/promises'
import {afterEach, describe, expect, it} from 'vitest'

import {startPolicyServer, type Decide, type Decision, type PolicyServer, type Query, type ServerOptions} from '../../src/policy/server.js'
import {DEFER, DUNNO, hold, rcpt, talk, type Target} from './client.js'

const HOST = '127.0.12.1'

interface Fake {
  server: PolicyServer
  target: Target
  logs: string[]
  asked: Query[]
  signals: AbortSignal[]
}

const running: PolicyServer[] = []
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.close()))
})

/** Plans: domain → decision after delayMs (-1: never). */
type Plan = Record<string, {server?: string; delayMs?: number; cached?: boolean}>

function fakeDecide(plan: Plan, asked: Query[], signals: AbortSignal[]): Decide {
  return (query, signal) => {
    asked.push(query)
    signals.push(signal)
    const step = plan[query.domain] ?? {}
    return new Promise<Decision>((resolve) => {
      if (step.delayMs === -1) return
      setTimeout(() => resolve({server: step.server, note: 'fake', cached: step.cached}), step.delayMs ?? 0)
    })
  }
}

async function start(plan: Plan, options: Partial<ServerOptions> = {}): Promise<Fake> {
  const logs: string[] = []
  const asked: Query[] = []
  const signals: AbortSignal[] = []
  const server = await startPolicyServer({
    listen: [{kind: 'inet', host: HOST, port: 0}],
    decide: fakeDecide(plan, asked, signals),
    timeoutMs: 5000,
    log: (line) => logs.push(line),
    ...options,
  })
  running.push(server)
  const port = Number(server.endpoints[0].split(':').at(-1))
  return {server, target: {host: HOST, port}, logs, asked, signals}
}

const PLAN: Plan = {
  'up.example': {server: 'mx1.up.example'},
  'slow.example': {server: 'mx1.slow.example', delayMs: 300},
  'down.example': {},
}

describe('requests and replies', () => {
  it('answers pipelined requests in request order, even when a later decision ends first', async () => {
    const fake = await start(PLAN)
    const got = await talk(fake.target, rcpt('a@slow.example') + rcpt('b@up.example') + rcpt('c@down.example') + rcpt('d@x', {protocol_state: 'DATA'}))
    expect(got.text).toBe(DEFER('mx1.slow.example') + DEFER('mx1.up.example') + DUNNO + DUNNO)
    expect(got.end).toBe('eof')
    expect(fake.asked.map((q) => q.domain)).toEqual(['slow.example', 'up.example', 'down.example'])
  })

  it('answers a client that half-closes after its request (Exim ${readsocket}), then closes', async () => {
    const fake = await start(PLAN)
    const got = await talk(fake.target, rcpt('joe@UP.Example.', {server_address: '192.0.2.25'}))
    expect(got).toMatchObject({text: DEFER('mx1.up.example'), end: 'eof'})
    expect(fake.asked).toEqual([{domain: 'up.example', serverAddress: '192.0.2.25'}])
  })

  it('keeps a connection for request after request (Postfix reuses it); no server_address, none asked', async () => {
    const fake = await start(PLAN)
    const {socket} = await hold(fake.target)
    const replies: string[] = []
    socket.setEncoding('latin1').on('data', (d: string) => replies.push(d))
    for (const domain of ['up.example', 'down.example', 'up.example']) {
      const before = replies.join('').length
      socket.write(rcpt(`x@${domain}`))
      for (let i = 0; i < 100 && replies.join('').length === before; i++) await sleep(20)
    }
    socket.destroy()
    expect(replies.join('')).toBe(DEFER('mx1.up.example') + DUNNO + DEFER('mx1.up.example'))
    expect(fake.asked).toEqual([{domain: 'up.example'}, {domain: 'down.example'}, {domain: 'up.example'}])
  })

  it('logs one line per decision: domain, decision, server, ms, cached; never the local part', async () => {
    const fake = await start({'up.example': {server: 'mx1.up.example', cached: true}})
    await talk(fake.target, rcpt('secret.person@up.example') + rcpt('secret.person@[192.0.2.1]'))
    expect(fake.logs).toHaveLength(2)
    fake.logs.sort()
    expect(fake.logs[0]).toMatch(/^event=decision request=\d domain=up\.example decision=defer server=mx1\.up\.example ms=\d+ cached=yes note=fake client_address=192\.0\.2\.9$/)
    expect(fake.logs[1]).toMatch(/^event=decision request=\d domain=\[192\.0\.2\.1\] decision=dunno note="recipient domain is an address literal" client_address=192\.0\.2\.9$/)
    expect(fake.logs.join('\n')).not.toContain('secret')
  })

  it('a server name that would break the reply is never written (DNS is not trusted)', async () => {
    const fake = await start({'evil.example': {server: 'mx1.evil.example\n\naction=OK'}})
    const got = await talk(fake.target, rcpt('a@evil.example'))
    expect(got.text).toBe(DUNNO)
    expect(fake.logs[0]).toContain('server="mx1.evil.example\\n\\naction=OK"')
  })

  it('recall: a remembered decision is answered without decide, in request order behind one still deciding, logged cached; a bad name from memory is still DUNNO', async () => {
    const remembered: Record<string, Decision> = {'up.example': {server: 'mx1.up.example', note: 'remembered'}, 'evil.example': {server: 'mx1.evil.example\r\naction=OK', note: 'remembered'}}
    const fake = await start(PLAN, {recall: (query) => remembered[query.domain]})
    const requests = rcpt('a@slow.example') + rcpt('b@up.example', {server_address: '192.0.2.25'}) + rcpt('c@evil.example') + rcpt('d@up.example')
    const got = await talk(fake.target, requests)
    expect(got.text).toBe(DEFER('mx1.slow.example') + DEFER('mx1.up.example') + DUNNO + DEFER('mx1.up.example'))
    expect(fake.asked.map((q) => q.domain)).toEqual(['slow.example'])
    const recalled = fake.logs.filter((l) => / domain=(up|evil)\.example /.test(l))
    expect(recalled).toHaveLength(3)
    for (const line of recalled) expect(line).toMatch(/ ms=0 cached=yes note=remembered /)
    expect(recalled.filter((l) => l.includes(' decision=dunno '))).toHaveLength(1)
  })

  it('a decide that throws gives DUNNO, logged', async () => {
    const fake = await start({})
    const server = await startPolicyServer({
      listen: [{kind: 'inet', host: HOST, port: 0}],
      decide: () => Promise.reject(new Error('boom')),
      timeoutMs: 1000,
      log: (l) => fake.logs.push(l),
    })
    running.push(server)
    const got = await talk({host: HOST, port: Number(server.endpoints[0].split(':').at(-1))}, rcpt('a@up.example'))
    expect(got.text).toBe(DUNNO)
    expect(fake.logs.at(-1)).toContain('note="decision failed: boom"')
  })

  it('listens on [::1] too', async () => {
    const fake = await start(PLAN, {listen: [{kind: 'inet', host: '::1', port: 0}]})
    expect(fake.server.endpoints[0]).toMatch(/^inet:\[::1\]:\d+$/)
    const got = await talk({host: '::1', port: Number(fake.server.endpoints[0].split(':').at(-1))}, rcpt('a@up.example'))
    expect(got.text).toBe(DEFER('mx1.up.example'))
  })
})

describe('deadline', () => {
  it('a decision that never ends gives DUNNO at --timeout, and its signal is aborted (timeout)', async () => {
    const fake = await start({'hang.example': {delayMs: -1}}, {timeoutMs: 400})
    const got = await talk(fake.target, rcpt('a@hang.example'))
    expect(got.text).toBe(DUNNO)
    expect(got.ms).toBeGreaterThanOrEqual(350)
    expect(got.ms).toBeLessThan(3000)
    expect(fake.signals[0].aborted).toBe(true)
    expect(fake.signals[0].reason).toBe('timeout')
    expect(fake.logs[0]).toMatch(/^event=decision request=1 domain=hang\.example decision=dunno ms=\d+ cached=no note="no decision within 0\.4 s" client_address=192\.0\.2\.9$/)
  })

  it('a client that leaves mid-decision (RST) cancels it; one that half-closes (FIN) is still answered', async () => {
    const fake = await start({'hang.example': {delayMs: -1}}, {timeoutMs: 10_000})
    const {socket} = await hold(fake.target)
    socket.write(rcpt('a@hang.example'))
    for (let i = 0; i < 50 && fake.signals.length === 0; i++) await sleep(20)
    socket.resetAndDestroy()
    for (let i = 0; i < 50 && !fake.signals[0]?.aborted; i++) await sleep(20)
    expect(fake.signals[0].reason).toBe('cancelled')
    for (let i = 0; i < 50 && fake.server.connections() > 0; i++) await sleep(20)
    expect(fake.server.connections()).toBe(0)
  })
})

const big = (n: number, c = 'x') => c.repeat(n)
const GOOD = rcpt('a@up.example')
const BAD = rcpt('a@bad.example')
/** Malformed or hostile streams; `replies`: how many good requests come before the trouble. */
const CORPUS: Array<{name: string; data: string | Buffer; replies?: number; halfClose?: boolean}> = [
  {name: 'line of 8193 octets', data: `recipient=a@bad.example${big(8193 - 23)}\n\n`},
  {name: 'line of 8193 octets then CR LF', data: `x=${big(8191)}\r\n\n`},
  {name: '100 KiB without a newline', data: big(100 * 1024)},
  {name: '100 KiB value without a newline', data: `request=smtpd_access_policy\nrecipient=${big(100 * 1024)}`},
  {name: 'request of 72 KiB in 8 KiB lines', data: `x=${big(8000)}\n`.repeat(9) + BAD},
  {name: 'request of 65537 octets', data: `x=${big(8189)}\n`.repeat(7) + `y=${big(65537 - 7 * 8192 - 4)}\n\n`},
  {name: '1001 attributes', data: 'a=\n'.repeat(1001) + '\n'},
  {name: '1001 attributes after a good request', data: GOOD + 'recipient=a@bad.example\n'.repeat(1001) + '\n', replies: 1},
  {name: 'NUL in a value', data: rcpt('a@bad\0.example')},
  {name: 'NUL in a name', data: `req\0uest=smtpd_access_policy\n\n`},
  {name: 'a lone NUL', data: Buffer.from([0])},
  {name: 'UTF-16 request', data: Buffer.from(BAD, 'utf16le')},
  {name: 'random binary', data: Buffer.concat([Buffer.from([0xff, 0x00]), randomBytes(2048)])},
  {name: 'binary with a blank line', data: Buffer.from([0xff, 0xfe, 0x0a, 0x0a])},
  {name: 'line without "="', data: 'hello\n\n'},
  {name: 'attribute name alone', data: 'request=smtpd_access_policy\nrecipient\n\n'},
  {name: 'HTTP request', data: 'GET / HTTP/1.1\r\nHost: 127.0.12.1\r\n\r\n'},
  {name: 'HTTP CONNECT', data: 'CONNECT 192.0.2.1:25 HTTP/1.1\r\n\r\n'},
  {name: 'SMTP instead of policy', data: 'EHLO client.example\r\nMAIL FROM:<a@b>\r\n'},
  {name: 'TLS ClientHello', data: Buffer.from('160301020001', 'hex')},
  {name: 'telnet IAC', data: Buffer.from([0xff, 0xf4, 0xff, 0xfd, 0x06, 0x0a])},
  {name: 'escape sequence line', data: '\x1b[31mred\n\n'},
  {name: 'control-D line', data: '\x04\n'},
  {name: 'space line', data: ' \n\n'},
  {name: 'CR CR LF', data: '\r\r\n'},
  {name: 'a bare empty line (not a request)', data: '\n'},
  {name: 'CR LF alone', data: '\r\n', halfClose: true},
  {name: 'good request, then an empty line', data: GOOD + '\n', replies: 1},
  {name: 'no blank line, then EOF', data: 'request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient=a@bad.example\n', halfClose: true},
  {name: 'one attribute without LF, then EOF', data: 'request=smtpd_access_policy', halfClose: true},
  {name: 'good request, then half a request and EOF', data: GOOD + 'request=smtpd_access_policy\n', replies: 1, halfClose: true},
  {name: 'good request, then garbage', data: GOOD + 'garbage\n\n' + GOOD, replies: 1},
  {name: 'two good requests, then an 8 KiB+ line', data: GOOD + GOOD + big(9000) + '\n', replies: 2},
  {name: 'good request, then NUL', data: GOOD + '\0' + GOOD, replies: 1},
  {name: 'good request, then binary', data: Buffer.concat([Buffer.from(GOOD), Buffer.from([0x80, 0x81, 0x0a])]), replies: 1},
  {name: 'good request, then 1 MiB', data: GOOD + big(1024 * 1024), replies: 1},
]

describe('trouble: a hostile corpus', () => {
  it('has at least 30 cases', () => expect(CORPUS.length).toBeGreaterThanOrEqual(30))

  it.each(CORPUS)('$name: good requests before it answered, no reply to it, one warning, connection closed', async ({data, replies = 0, halfClose = false}) => {
    const fake = await start(PLAN)
    const got = await talk(fake.target, data, {halfClose, limitMs: 5000})
    expect(got.end).not.toBe('open')
    expect(got.text).toBe(DEFER('mx1.up.example').repeat(replies))
    expect(fake.asked.map((q) => q.domain)).toEqual(Array(replies).fill('up.example'))
    const warnings = fake.logs.filter((l) => l.startsWith('warning:'))
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatch(/^warning: client 127\.0\.12\.2:\d+: .+; closing the connection without a reply$/)
    expect(warnings[0]).not.toMatch(/[\x00-\x1f]/)
    // …and the server serves on.
    expect((await talk(fake.target, GOOD)).text).toBe(DEFER('mx1.up.example'))
  })

  it('every corpus case at once, while a good client is answered', async () => {
    const fake = await start(PLAN)
    const hostile = CORPUS.map(({data, halfClose = false}) => talk(fake.target, data, {halfClose}))
    const good = await talk(fake.target, GOOD + GOOD)
    expect(good.text).toBe(DEFER('mx1.up.example').repeat(2))
    const results = await Promise.all(hostile)
    expect(results.filter((r) => r.end === 'open')).toEqual([])
    expect(fake.logs.filter((l) => l.startsWith('warning:'))).toHaveLength(CORPUS.length)
  })

  it('a slowloris client (one byte a second) is never answered; the others are', async () => {
    const fake = await start(PLAN)
    const {socket} = await hold(fake.target)
    let received = ''
    socket.on('data', (d) => (received += d))
    const bytes = Buffer.from(GOOD)
    for (let i = 0; i < 4; i++) {
      socket.write(bytes.subarray(i, i + 1))
      expect((await talk(fake.target, GOOD)).text).toBe(DEFER('mx1.up.example'))
      await sleep(1000)
    }
    expect(received).toBe('')
    expect(socket.destroyed).toBe(false)
    socket.destroy()
  })

  it('a partial request does not keep a connection alive: closed at the idle timeout though it trickles', async () => {
    const fake = await start(PLAN, {idleTimeoutMs: 1200})
    const {socket, closed} = await hold(fake.target)
    const bytes = Buffer.from(GOOD)
    const trickle = setInterval(() => socket.writable && socket.write(bytes.subarray(0, 1)), 200)
    const ms = await Promise.race([closed, sleep(5000).then(() => Infinity)])
    clearInterval(trickle)
    expect(ms).toBeGreaterThanOrEqual(1100)
    expect(ms).toBeLessThan(4000)
  })
})

describe('connections', () => {
  it('200 idle clients while another is answered', async () => {
    const fake = await start(PLAN)
    const idle = await Promise.all(Array.from({length: 200}, () => hold(fake.target)))
    const got = await talk(fake.target, GOOD)
    expect(got.text).toBe(DEFER('mx1.up.example'))
    expect(got.ms).toBeLessThan(2000)
    expect(fake.server.connections()).toBeGreaterThanOrEqual(200)
    for (const {socket} of idle) socket.destroy()
  })

  it('--max-connections: a new connection closes the one idle longest (not one with a request in flight), logged', async () => {
    const fake = await start({...PLAN, 'hang.example': {delayMs: -1}}, {maxConnections: 3, timeoutMs: 3000})
    const first = await hold(fake.target)
    const busy = await hold(fake.target)
    busy.socket.write(rcpt('a@hang.example'))
    for (let i = 0; i < 50 && fake.asked.length === 0; i++) await sleep(20)
    const third = await hold(fake.target)
    // The first is idle longest: it goes, the busy one stays.
    expect((await talk(fake.target, GOOD)).text).toBe(DEFER('mx1.up.example'))
    expect(await Promise.race([first.closed.then(() => 'closed'), sleep(2000).then(() => 'open')])).toBe('closed')
    expect(busy.socket.destroyed).toBe(false)
    // Then the third (the one just answered left by itself).
    for (let i = 0; i < 50 && fake.server.connections() > 2; i++) await sleep(20)
    const later = [await hold(fake.target), await hold(fake.target)]
    expect(await Promise.race([third.closed.then(() => 'closed'), sleep(2000).then(() => 'open')])).toBe('closed')
    expect(busy.socket.destroyed).toBe(false)
    expect(fake.server.stats()).toMatchObject({evicted: 2, refused: 0})
    for (const {socket} of later) socket.destroy()
    expect(fake.logs.filter((l) => l.includes('--max-connections'))).toEqual([expect.stringMatching(/^warning: 3 connections open \(--max-connections\): closing the one idle longest \(client 127\.0\.12\.2:\d+, idle \d+ s\) for client 127\.0\.12\.2:\d+$/)])
    busy.socket.destroy()
  })

  it('only when every connection has a request in flight is a new one closed: logged once a second, not once per connection', async () => {
    const fake = await start({'hang.example': {delayMs: -1}}, {maxConnections: 2, timeoutMs: 2000})
    const busy = await Promise.all([hold(fake.target), hold(fake.target)])
    for (const {socket} of busy) socket.write(rcpt('a@hang.example'))
    for (let i = 0; i < 50 && fake.asked.length < 2; i++) await sleep(20)
    const extra = await Promise.all(Array.from({length: 20}, () => talk(fake.target, GOOD, {halfClose: false, limitMs: 3000})))
    expect(extra.map((t) => `${t.end} ${t.text}`)).toEqual(Array(20).fill(expect.stringMatching(/^(eof|reset) $/)))
    expect(fake.server.stats()).toMatchObject({refused: 20, evicted: 0, connections: 2})
    expect(fake.logs.filter((l) => l.includes('--max-connections'))).toEqual([expect.stringMatching(/^warning: client 127\.0\.12\.2:\d+: 2 connections open \(--max-connections\), each with a request in flight; closing this one$/)])
    for (const {socket} of busy) socket.destroy()
  })

  it('reads at most 64 requests ahead of their replies on one connection', async () => {
    const fake = await start({'hang.example': {delayMs: -1}}, {timeoutMs: 1000})
    const got = talk(fake.target, rcpt('a@hang.example').repeat(200), {halfClose: false, limitMs: 1500})
    await sleep(500)
    expect(fake.asked).toHaveLength(64)
    expect((await got).text).toBe(DUNNO.repeat(64))
    for (let i = 0; i < 100 && fake.asked.length < 128; i++) await sleep(20)
    expect(fake.asked.length).toBeGreaterThanOrEqual(128)
  })

  it('close(): stops accepting, closes idle connections at once, answers what is in flight, then resolves', async () => {
    const fake = await start(PLAN)
    const idle = await hold(fake.target)
    const inFlight = talk(fake.target, rcpt('a@slow.example'), {halfClose: false})
    await sleep(100)
    const closing = fake.server.close()
    const idleClosedMs = await Promise.race([idle.closed, sleep(2000).then(() => Infinity)])
    expect(idleClosedMs).toBeLessThan(1000 + 100 + 100)
    const got = await inFlight
    expect(got).toMatchObject({text: DEFER('mx1.slow.example'), end: 'eof'})
    await closing
    expect((await talk(fake.target, GOOD, {limitMs: 1000})).end).toBe('reset')
  })
})
