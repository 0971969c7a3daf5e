// The shared DNS client where users meet it (issues 18 and 20): the built binary out of
// descriptors (bash `ulimit -n 40`) never reads a lookup that found no descriptor as an
// answer; `serve` under 300 concurrent fresh domains whose MX names hang keeps its
// descriptors bounded; an MX answer is held for its TTL, so a changed MX is followed.
// Loopback range 127.10.5.0/24 (the policy listener is the harness's 127.0.20.1).
import {readdirSync} from 'node:fs'
import net from 'node:net'
import {setTimeout as sleep} from 'node:timers/promises'
import {afterEach, describe, expect, it} from 'vitest'

import {startDns} from '../fixtures/dns.js'
import {startSmtp} from '../fixtures/smtp.js'
import {runTimed} from '../fixtures/spawn.js'
import {BIN} from './cli.js'
import {closedAfterEach} from './fixtures.js'
import {DEFER, DUNNO, rcpt} from './policy/client.js'
import {startServe, type Served} from './serve-harness.js'

const keep = closedAfterEach()
const DNS = '127.10.5.53'
const THIS_HOST = '127.10.5.20'
const LIVE = '127.10.5.30'
const HUNG = Array.from({length: 30}, (_, i) => `hung${i}.test`)

const running: Served[] = []
afterEach(() => {
  for (const {child} of running.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
})

describe('the binary under ulimit -n 40: 30 names that hang beside this host and a live server', () => {
  /** The binary in bash with 40 descriptors; `words` after the common flags. */
  async function starved(words: string[]) {
    const zone: Parameters<typeof startDns>[0] = {'this.test': {A: [THIS_HOST]}, 'live.test': {A: [LIVE]}}
    for (const name of HUNG) zone[name] = {silent: true}
    const dns = await keep(startDns(zone, {host: DNS}))
    const live = await keep(startSmtp({host: LIVE, greeting: '220 live ESMTP\r\n'}))
    const args = ['--no-cache', '--timeout', '2', '--dns-server', dns.address, '--port', String(live.port), '--stop', THIS_HOST, ...words]
    const r = await runTimed(['-c', 'ulimit -n 40 && exec "$0" "$@"', process.execPath, BIN, ...args], {command: 'bash', limitMs: 20_000})
    return {stdout: r.stdout, stderr: r.stderr, status: r.status}
  }
  /** The right answer, or exit 2 with one line naming a system error: never the wrong one. */
  const rightOrSystemError = (r: {stdout: string; stderr: string; status: number | null}, right: {stdout: string; status: number}) => {
    if (r.status === 2) expect([r.stdout, r.stderr]).toEqual(['', expect.stringMatching(/^smtpdcheck: system error: [^\n]*out of file descriptors[^\n]*\n$/)])
    else expect(r).toEqual({...right, stderr: ''})
  }

  it('this host at 20, the live server at 30: exit 0, never 1 printing the server at 30', async () => {
    for (let i = 0; i < 2; i++) rightOrSystemError(await starved([...HUNG.map((h) => `10:${h}`), '20:this.test', `30:${LIVE}`]), {stdout: '', status: 0})
  }, 60_000)

  it('the live server at 15, more preferred than this host at 20: exit 1 printing it, never 0', async () => {
    for (let i = 0; i < 2; i++) rightOrSystemError(await starved([...HUNG.map((h) => `10:${h}`), '15:live.test', '20:this.test']), {stdout: 'live.test\n', status: 1})
  }, 60_000)
})

/** Open descriptors of a process. */
const descriptors = (pid: number) => readdirSync(`/proc/${pid}/fd`).length

/** One request per connection, all at once; resolves with the replies (latin1) in order. */
function askEach(port: number, requests: string[], limitMs = 20_000): Promise<string[]> {
  return Promise.all(requests.map((request) => new Promise<string>((resolve) => {
    const socket = net.connect({host: '127.0.20.1', port, localAddress: '127.10.5.2'})
    let text = ''
    const finish = () => {
      clearTimeout(timer)
      socket.destroy()
      resolve(text)
    }
    const timer = setTimeout(finish, limitMs)
    socket.on('error', finish)
    socket.on('connect', () => socket.write(request))
    socket.on('data', (d) => {
      text += d.toString('latin1')
      if (text.endsWith('\n\n')) finish()
    })
  })))
}

describe('serve: DNS sockets shared, MX answers held for their TTL', () => {
  it('300 concurrent fresh domains whose MX names hang: descriptors beyond the client connections stay ≤ 100; every request DUNNO', async () => {
    const zone: Parameters<typeof startDns>[0] = {'me.test': {A: [THIS_HOST]}}
    for (let i = 0; i < 300; i++) {
      zone[`d${i}.test`] = {MX: [[10, `h${i}a.test`], [20, `h${i}b.test`], [30, 'me.test']]}
      zone[`h${i}a.test`] = {silent: true}
      zone[`h${i}b.test`] = {silent: true}
    }
    const dns = await keep(startDns(zone, {host: DNS}))
    const server = await startServe(['--dns-server', dns.address, '--port', '25', '--no-cache', '--timeout', '3'])
    running.push(server)
    expect(server.port).toBeGreaterThan(0)
    const pid = server.child.pid!
    const baseline = descriptors(pid)
    let peak = 0
    let done = false
    const replies = askEach(server.port, Array.from({length: 300}, (_, i) => rcpt(`u@d${i}.test`, {server_address: THIS_HOST}))).finally(() => (done = true))
    while (!done) {
      peak = Math.max(peak, descriptors(pid) - baseline - 300) // 300: the server's side of the client connections
      await sleep(25)
    }
    expect(await replies).toEqual(Array.from({length: 300}, () => DUNNO))
    expect(dns.queries.filter((q) => q.name === 'h0a.test').length).toBeGreaterThan(0) // the hung names were asked
    expect(peak).toBeLessThanOrEqual(100)
  }, 60_000)

  it('an MX changed under a TTL of 1 s is followed within about 2 s', async () => {
    const first = await keep(startSmtp({host: '127.10.5.31', greeting: '220 p1\r\n'}))
    await keep(startSmtp({host: '127.10.5.32', port: first.port, greeting: '220 p2\r\n'}))
    const zone: Parameters<typeof startDns>[0] = {
      'ttl.test': {MX: [[10, 'p1.test'], [20, 'me.test']], ttl: 1},
      'p1.test': {A: ['127.10.5.31']},
      'p2.test': {A: ['127.10.5.32']},
      'me.test': {A: [THIS_HOST]},
    }
    const dns = await keep(startDns(zone, {host: DNS}))
    const server = await startServe(['--dns-server', dns.address, '--port', String(first.port), '--no-cache'])
    running.push(server)
    const ask = async () => (await askEach(server.port, [rcpt('u@ttl.test', {server_address: THIS_HOST})]))[0]
    expect(await ask()).toBe(DEFER('p1.test'))
    zone['ttl.test'] = {MX: [[10, 'p2.test'], [20, 'me.test']], ttl: 1}
    const changed = performance.now()
    let reply = ''
    while (reply !== DEFER('p2.test') && performance.now() - changed < 5000) {
      await sleep(100)
      reply = await ask()
    }
    expect(reply).toBe(DEFER('p2.test'))
    expect(performance.now() - changed).toBeLessThan(2500)
  }, 30_000)
})
