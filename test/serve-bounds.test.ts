// `smtpdcheck serve` holds whatever its clients do (issue 20, SPEC §11), through the built
// binary: pipelined requests before a half-close, --max-connections full of idle
// connections, clients that never read their replies, log hygiene. Loopback 127.40.0.0/16:
// serve on 127.40.0.1, DNS on 127.40.0.53, the primary on 127.40.0.10, clients from
// 127.40.1.x to 127.40.3.x.
import {readFileSync} from 'node:fs'
import net from 'node:net'
import {setTimeout as sleep} from 'node:timers/promises'
import {afterEach, describe, expect, it} from 'vitest'

import {startDns} from '../fixtures/dns.js'
import {startSmtp} from '../fixtures/smtp.js'
import {closedAfterEach} from './fixtures.js'
import {DEFER, DUNNO, rcpt, talk} from './policy/client.js'
import {startServe, type Served} from './serve-harness.js'

const keep = closedAfterEach()
const HOST = '127.40.0.1'
const PRIMARY = '127.40.0.10'
const SECONDARY = '127.40.0.20'
const started: Served[] = []
afterEach(async () => {
  for (const {child, done} of started.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await done
  }
})

/** The zone: example.test (primary up, then this host) and, for the ordering, only.test (this host alone). */
function zone(extra: Record<string, {MX?: Array<[number, string]>; A?: string[]; delayMs?: number}> = {}) {
  return {
    'example.test': {MX: [[10, 'mx1.example.test'], [20, 'mx2.example.test']] as Array<[number, string]>},
    'only.test': {MX: [[10, 'mx2.example.test']] as Array<[number, string]>},
    // Short names, so that 1,000 requests fit in one read of the server's (64 KiB).
    'e.t': {MX: [[10, 'mx1.example.test'], [20, 'mx2.example.test']] as Array<[number, string]>},
    'o.t': {MX: [[10, 'mx2.example.test']] as Array<[number, string]>},
    'mx1.example.test': {A: [PRIMARY]},
    'mx2.example.test': {A: [SECONDARY]},
    ...extra,
  }
}

/** A DNS fixture, the primary and `serve` asking them (this host: --stop SECONDARY). */
async function world(args: string[] = [], options: {nofile?: number; zone?: ReturnType<typeof zone>} = {}) {
  const dns = await keep(startDns(options.zone ?? zone(), {host: '127.40.0.53'}))
  const primary = await keep(startSmtp({host: PRIMARY, greeting: '220 mx1 ESMTP\r\n'}))
  const served = await startServe(['--dns-server', dns.address, '--port', String(primary.port), '--stop', SECONDARY, ...args], {host: HOST, nofile: options.nofile})
  started.push(served)
  expect(served.port).toBeGreaterThan(0)
  return {dns, primary, served, target: {host: HOST, port: served.port}}
}

type Target = {host: string; port: number}

/** Connect from `from` (default 127.40.1.1), write `data` in one write (then FIN unless `halfClose` is false), read until closed or `limitMs`. */
const exchange = (target: Target, data: string, options: {from?: string; halfClose?: boolean; limitMs?: number; until?: (text: string) => boolean} = {}) =>
  talk(target, data, {limitMs: 10_000, ...options, from: options.from ?? '127.40.1.1'})

const ask = (secondary = SECONDARY) => rcpt('someone@example.test', {server_address: secondary})
const askOnly = () => rcpt('someone@only.test', {server_address: SECONDARY})
/** The warning lines (level=warning) as `smtpdcheck: warning: MESSAGE`, the msg value unquoted (JSON rules, src/policy/log.ts). */
const warnings = (served: Served) =>
  served.output.stderr.split('\n').flatMap((line) => {
    const msg = /^smtpdcheck: level=warning .*?\bmsg=("(?:[^"\\]|\\.)*"|\S+)/.exec(line)?.[1]
    return msg === undefined ? [] : [`smtpdcheck: warning: ${msg.startsWith('"') ? JSON.parse(msg) : msg}`]
  })

/** The server's own count of open connections: the `connections` field of the stats line SIGUSR1 asks for (waits for it, at most 2 s). */
async function openConnections(served: Served): Promise<number> {
  const stats = () => served.output.stderr.match(/ event=stats .*/g) ?? []
  const before = stats().length
  served.child.kill('SIGUSR1')
  for (let i = 0; i < 100 && stats().length === before; i++) await sleep(20)
  return Number(/ connections=(\d+)/.exec(stats().at(-1) ?? '')?.[1] ?? Number.NaN)
}

/** VmRSS of `pid` in MiB. */
const rssMiB = (pid: number) => Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024

/** Open `count` connections from 127.40.2.x/127.40.3.x (100 at a time) and keep them; those the server closed at once are dropped. */
async function holdIdle(target: Target, count: number): Promise<net.Socket[]> {
  const held: net.Socket[] = []
  for (let i = 0; i < count; i += 100) {
    const batch = Array.from({length: Math.min(100, count - i)}, (_, j) => new Promise<net.Socket | undefined>((resolve) => {
      const socket = net.connect({...target, localAddress: `127.40.${2 + ((i + j) % 2)}.${1 + ((i + j) % 200)}`})
      socket.on('error', () => {})
      socket.resume() // reads, so that the server's FIN is seen (destroyed)
      socket.setTimeout(5000, () => socket.destroy())
      socket.once('connect', () => {
        socket.setTimeout(0)
        resolve(socket)
      })
      socket.once('close', () => resolve(undefined))
    }))
    for (const socket of await Promise.all(batch)) if (socket) held.push(socket)
  }
  return held
}

/**
 * A Postfix smtpd's policy client: one connection kept, `count` requests in turn on it once
 * `go` resolves. `connected` resolves once it is connected; `replies` with what came.
 */
function postfix(target: Target, from: string, count: number, go: Promise<void>): {connected: Promise<void>; replies: Promise<string[]>} {
  let connected!: () => void
  const isConnected = new Promise<void>((resolve) => (connected = resolve))
  const replies = new Promise<string[]>((resolve) => {
    const socket = net.connect({...target, localAddress: from})
    const got: string[] = []
    let text = ''
    const finish = () => {
      clearTimeout(timer)
      connected()
      socket.destroy()
      resolve(got)
    }
    const timer = setTimeout(finish, 20_000)
    socket.setEncoding('latin1')
    socket.on('connect', () => {
      connected()
      void go.then(() => socket.write(ask()))
    })
    socket.on('data', (d: string) => {
      text += d
      for (let end = text.indexOf('\n\n'); end >= 0; end = text.indexOf('\n\n')) {
        got.push(text.slice(0, end + 2))
        text = text.slice(end + 2)
        if (got.length === count) return finish()
        socket.write(ask())
      }
    })
    socket.on('error', finish)
    socket.on('close', finish)
  })
  return {connected: isConnected, replies}
}

describe('serve: pipelined requests, then a half-close', () => {
  // 63 octets each (--stop is the local host): 1,000 of them are one read of the server's.
  const short = (domain: string) => `request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient=a@${domain}\n\n`

  it.each([65, 100, 1000])('%i requests in one write, then FIN: every one answered, in order, then the connection closed', async (n) => {
    const {target} = await world()
    const requests = Array.from({length: n}, (_, i) => short(i % 3 === 2 ? 'o.t' : 'e.t'))
    expect(requests.join('').length).toBeLessThan(64 * 1024)
    const expected = Array.from({length: n}, (_, i) => (i % 3 === 2 ? DUNNO : DEFER('mx1.example.test'))).join('')
    const got = await exchange(target, requests.join(''), {limitMs: 20_000})
    expect(got.text.split('\n\n').length - 1).toBe(n)
    expect(got.text).toBe(expected)
    expect(got.end).toBe('eof')
  }, 40_000)
})

describe('serve: --max-connections full of idle connections', () => {
  it('1,000 idle connections held (the default limit): Postfix-like clients are still answered, the idle longest closed for them, logged at most once a second', async () => {
    const {target, served} = await world([], {nofile: 4096})
    const idle = await holdIdle(target, 1000)
    try {
      expect(idle.length).toBe(1000)
      // The server accepts one connection per turn of its event loop: wait until it says it holds them all.
      let held = 0
      for (let i = 0; i < 100 && held < 1000; i++) held = await openConnections(served)
      expect(held).toBe(1000)
      const closedEarly = idle.filter((s) => s.destroyed).length
      // 20 Postfix-like clients: one connection each, all connected (and accepted) first, then 5 requests in turn on each.
      let go!: () => void
      const start = new Promise<void>((resolve) => (go = resolve))
      const clients = Array.from({length: 20}, (_, c) => postfix(target, `127.40.1.${1 + c}`, 5, start))
      await Promise.all(clients.map((c) => c.connected))
      // Accepting each one closed the connection idle longest: wait for the 20 (bounded).
      for (let i = 0; i < 500 && idle.filter((s) => s.destroyed).length < 20; i++) await sleep(20)
      go()
      const answers = (await Promise.all(clients.map((c) => c.replies))).flat()
      expect(answers).toEqual(Array(100).fill(DEFER('mx1.example.test')))
      await sleep(200)
      // Each new connection closed one idle connection, the one idle longest: 20 of the first 100 held (opened at once).
      const gone = idle.flatMap((s, i) => (s.destroyed ? [i] : []))
      expect(closedEarly).toBe(0)
      expect(gone).toHaveLength(20)
      expect(gone.every((i) => i < 100)).toBe(true)
      const logged = warnings(served).filter((l) => l.includes('--max-connections'))
      expect(logged.length).toBeGreaterThanOrEqual(1)
      expect(logged.length).toBeLessThan(10)
      expect(logged[0]).toMatch(/warning: 1000 connections open \(--max-connections\): closing the one idle longest \(client 127\.40\.[23]\.\d+:\d+, idle \d+ s\) for client 127\.40\.1\.\d+:\d+/)
    } finally {
      for (const s of idle) s.destroy()
    }
  }, 60_000)
})

describe('serve: clients that never read their replies', () => {
  it('300 clients writing 1,000 requests each and reading nothing: RSS grows by less than 200 MiB, and a Postfix-like client is answered meanwhile', async () => {
    const {target, served} = await world()
    expect((await exchange(target, ask())).text).toBe(DEFER('mx1.example.test')) // warm: the decision is cached
    await sleep(300)
    const pid = served.child.pid!
    const before = rssMiB(pid)
    let peak = before
    const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(pid))), 100)
    const batch = Buffer.from(ask().repeat(100))
    const deaf = Array.from({length: 300}, (_, i) => {
      const socket = net.connect({...target, localAddress: `127.40.${2 + (i % 2)}.${1 + (i % 200)}`})
      socket.on('error', () => {})
      socket.pause() // never reads
      let sent = 0
      const pump = () => {
        while (!socket.destroyed && sent < 10) {
          sent++
          if (!socket.write(batch)) return void socket.once('drain', pump)
        }
      }
      socket.on('connect', pump)
      return socket
    })
    try {
      const latencies: number[] = []
      for (let i = 0; i < 10; i++) {
        await sleep(300)
        const got = await exchange(target, ask(), {from: '127.40.1.1', limitMs: 10_000})
        expect(got.text).toBe(DEFER('mx1.example.test'))
        latencies.push(got.ms)
      }
      clearInterval(sampler)
      expect(peak - before).toBeLessThan(200)
      expect(Math.max(...latencies)).toBeLessThan(10_000) // generous: the machine may be shared; main never answered within 10 s
    } finally {
      clearInterval(sampler)
      for (const s of deaf) s.destroy()
    }
    expect(served.child.exitCode).toBeNull()
  }, 60_000)
})

describe('serve: log hygiene', () => {
  it('no MaxListenersExceededWarning when 60 requests for different domains that share their MX hosts are in flight at once', async () => {
    const extra: Record<string, {MX: Array<[number, string]>}> = {}
    for (let i = 0; i < 60; i++) extra[`d${i}.test`] = {MX: [[10, 'mx1.example.test'], [20, 'mx2.example.test']]}
    const slow = zone(extra)
    slow['mx1.example.test'] = {A: [PRIMARY], delayMs: 200}
    slow['mx2.example.test'] = {A: [SECONDARY], delayMs: 200}
    const {target, served} = await world(['--no-cache'], {zone: slow})
    const requests = Array.from({length: 60}, (_, i) => rcpt(`a@d${i}.test`, {server_address: SECONDARY})).join('')
    const got = await exchange(target, requests, {limitMs: 10_000})
    expect(got.text).toBe(DEFER('mx1.example.test').repeat(60))
    expect(served.output.stderr).not.toMatch(/MaxListenersExceededWarning|Warning:|\(node:\d+\)/)
  }, 30_000)

  it('an inet client that sends trouble and resets at once is named by its address or endpoint, never as a unix socket client', async () => {
    const {target, served} = await world()
    for (let i = 0; i < 10; i++) {
      await new Promise<void>((resolve) => {
        const socket = net.connect({...target, localAddress: '127.40.1.7'})
        socket.on('error', () => {})
        socket.on('close', () => resolve())
        socket.on('connect', () => {
          socket.write('nonsense\n')
          socket.resetAndDestroy()
        })
      })
    }
    for (let i = 0; i < 100 && warnings(served).length < 10; i++) await sleep(20)
    const logged = warnings(served)
    expect(logged).toHaveLength(10)
    for (const line of logged) {
      expect(line).toMatch(/^smtpdcheck: warning: client (127\.40\.1\.7:\d+|\(address unknown: connection reset\) on inet:127\.40\.0\.1:\d+): line without "=": "nonsense"; closing the connection without a reply$/)
    }
  }, 30_000)

  it('a bare empty line is not a request: no reply, one warning, the connection closed; a good request before it is answered', async () => {
    const {target, served} = await world()
    const bare = await exchange(target, '\n', {halfClose: false, limitMs: 5000})
    expect(bare).toMatchObject({text: '', end: expect.stringMatching(/eof|reset/)})
    const after = await exchange(target, ask() + '\n', {halfClose: false, limitMs: 5000})
    expect(after).toMatchObject({text: DEFER('mx1.example.test'), end: 'eof'})
    for (let i = 0; i < 50 && warnings(served).length < 2; i++) await sleep(20)
    expect(warnings(served)).toEqual([
      expect.stringMatching(/^smtpdcheck: warning: client 127\.40\.1\.1:\d+: empty line where a request should begin \(a request without attributes\); closing the connection without a reply$/),
      expect.stringMatching(/^smtpdcheck: warning: client 127\.40\.1\.1:\d+: empty line where a request should begin/),
    ])
    expect(served.output.stderr).not.toMatch(/decision=dunno note="request= is not/)
  }, 30_000)
})
