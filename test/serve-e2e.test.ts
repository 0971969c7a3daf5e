// `smtpdcheck serve` through the built binary (SPEC §11, issues 12 and 13): a child process,
// a DNS fixture serving the MX records (--dns-server), SMTP fixtures as the MXes, policy
// clients on real sockets. Loopback range 127.0.20.0/24.
import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import net from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {afterEach, describe, expect, it} from 'vitest'

import {startDns} from '../fixtures/dns.js'
import {startSmtp} from '../fixtures/smtp.js'
import {startTimed} from '../fixtures/spawn.js'
import {BIN, runCli} from './cli.js'
import {closedAfterEach} from './fixtures.js'
import {DEFER, DUNNO, rcpt} from './policy/client.js'
import {startServe, type Served} from './serve-harness.js'

const keep = closedAfterEach()
const PRIMARY = '127.0.20.10'
const SECONDARY = '127.0.20.20'
const started: Array<ReturnType<typeof startTimed>> = []
afterEach(() => {
  for (const {child} of started.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
})

/** Start `serve --listen inet:127.0.20.1:0 args`, killed after the test if still running. */
async function serve(args: string[]): Promise<Served> {
  const served = await startServe(args)
  started.push(served)
  return served
}

/** A zone: example.test's MX is the primary (10) and the secondary (20). */
function zone() {
  return {
    'example.test': {MX: [[10, 'mx1.example.test'], [20, 'mx2.example.test']] as Array<[number, string]>},
    'mx1.example.test': {A: [PRIMARY]},
    'mx2.example.test': {A: [SECONDARY]},
    'only.test': {MX: [[10, 'mx2.example.test']] as Array<[number, string]>},
  } as Record<string, {MX?: Array<[number, string]>; A?: string[]; silent?: boolean}>
}

/** Send `requests` on one connection (pipelined), read until as many replies came or `limitMs`. */
function ask(port: number, requests: string[], limitMs = 10_000): Promise<string[]> {
  return new Promise((resolve) => {
    const socket = net.connect({host: '127.0.20.1', port, localAddress: '127.0.20.2'})
    let text = ''
    const replies = () => text.split('\n\n').slice(0, -1).map((r) => `${r}\n\n`)
    const finish = () => {
      clearTimeout(timer)
      socket.destroy()
      resolve(replies())
    }
    const timer = setTimeout(finish, limitMs)
    socket.on('error', finish)
    socket.on('close', finish)
    socket.on('connect', () => socket.write(requests.join('')))
    socket.on('data', (d) => {
      text += d.toString('latin1')
      if (replies().length >= requests.length) finish()
    })
  })
}

const lines = (stderr: string) => stderr.split('\n').filter((l) => l.includes('decision='))

/** Log lines leave after the reply (batched per loop turn): wait until `count` decisions are logged. */
async function logged(server: Served, count: number): Promise<string[]> {
  for (let i = 0; i < 100 && lines(server.output.stderr).length < count; i++) await sleep(20)
  return lines(server.output.stderr)
}

describe('serve: decisions', () => {
  it('DEFER naming the primary while it is up, from cache the second time with no DNS query; DUNNO when down; DUNNO at the best MX', async () => {
    const primary = await keep(startSmtp({host: PRIMARY, greeting: '220 mx1 ESMTP\r\n'}))
    const dns = await keep(startDns(zone(), {host: '127.0.20.1'}))
    const server = await serve(['--dns-server', dns.address, '--port', String(primary.port), '--timeout', '3'])
    const request = rcpt('someone.secret@example.test', {server_address: SECONDARY})
    expect(await ask(server.port, [request])).toEqual([DEFER('mx1.example.test')])
    const queries = dns.queries.length
    expect(await ask(server.port, [request, request])).toEqual([DEFER('mx1.example.test'), DEFER('mx1.example.test')])
    expect(dns.queries.length).toBe(queries) // MX and A answers held: no DNS round trip
    expect(primary.connections.length).toBe(1) // --positive-ttl 30 by default in serve
    // The best MX asks: no more preferred MX, nothing probed.
    expect(await ask(server.port, [rcpt('a@only.test', {server_address: SECONDARY})])).toEqual([DUNNO])
    const log = await logged(server, 4)
    expect(log[0]).toMatch(/domain=example\.test decision=defer server=mx1\.example\.test ms=\d+ cached=no/)
    expect(log[1]).toMatch(/domain=example\.test decision=defer server=mx1\.example\.test ms=\d+ cached=yes/)
    expect(log.at(-1)).toMatch(/domain=only\.test decision=dunno .*note="no more preferred MX"/)
    expect(server.output.stderr).not.toContain('someone.secret')
    expect(server.output.stderr).not.toMatch(/Warning|UnparsedCommand/)
  }, 30_000)

  it('DUNNO when the primary is down (refused), and it is not probed again within --negative-ttl', async () => {
    const down = await keep(startSmtp({host: PRIMARY}))
    const port = down.port
    await down.close() // nothing listens on PRIMARY:port any more
    const dns = await keep(startDns(zone(), {host: '127.0.20.1'}))
    const server = await serve(['--dns-server', dns.address, '--port', String(port), '--timeout', '3'])
    const request = rcpt('a@example.test', {server_address: SECONDARY})
    expect(await ask(server.port, [request])).toEqual([DUNNO])
    expect(await ask(server.port, [request])).toEqual([DUNNO])
    const log = await logged(server, 2)
    expect(log[0]).toMatch(/decision=dunno .*cached=no note="no more preferred MX is up/)
    expect(log[1]).toMatch(/decision=dunno .*cached=yes/)
  }, 30_000)

  it('--stop is the local host when a request has no server_address; --verbose traces each request with its number', async () => {
    const primary = await keep(startSmtp({host: PRIMARY, greeting: '220 mx1\r\n'}))
    const dns = await keep(startDns(zone(), {host: '127.0.20.1'}))
    const server = await serve(['--dns-server', dns.address, '--port', String(primary.port), '--stop', SECONDARY, '-v'])
    expect(await ask(server.port, [rcpt('a@example.test'), rcpt('b@only.test')])).toEqual([DEFER('mx1.example.test'), DUNNO])
    await logged(server, 2)
    expect(server.output.stderr).toMatch(/smtpdcheck: level=debug event=trace request=1 domain=example\.test msg="\+ *\d+ms MX example\.test/)
    expect(server.output.stderr).toMatch(/event=trace request=1 domain=example\.test msg=".*mx1\.example\.test: 127\.0\.20\.10:\d+ available/)
    expect(server.output.stderr).toMatch(/event=trace request=2 domain=only\.test /)
  }, 30_000)
})

describe('serve: start-up', () => {
  it('--help through the binary: its own usage, every flag, Postfix and Exim examples', async () => {
    const help = await runCli(['serve', '--help'])
    expect(help.status).toBe(0)
    for (const flag of ['--listen', '--stop', '--timeout', '--port', '--ipv4', '--ipv6', '--dns-server', '--attempt-delay', '--negative-ttl', '--positive-ttl', '--cache-file', '--[no-]cache', '--max-connections', '--socket-mode', '--verbose']) {
      expect(help.stdout).toContain(flag)
    }
    expect(help.stdout).toContain('smtpdcheck serve --listen')
    expect(help.stdout).toContain('check_policy_service { inet:127.0.0.1:10040, timeout=15s')
    expect(help.stdout).toContain('readsocket')
  })

  it.each([[['serve.']], [['--', 'serve']], [['--timeout', '1', 'serve.']]])('%j is a server word, not the subcommand', async (words) => {
    const dns = await keep(startDns({}, {host: '127.0.20.1'}))
    const result = await runCli(['--dns-server', dns.address, '-v', ...words])
    expect(result.status).toBe(0)
    expect(result.stderr).toMatch(/servers: serve\.?\n[^]*serve\.?: lookup nxdomain/)
  })

  it.each([
    [['serve'], /serve needs --listen/],
    [['serve', '--listen', 'inet:127.0.20.1:0', 'mx.example'], /serve takes no server words: "mx\.example"/],
    [['serve', '--listen', 'tcp:1'], /bad --listen "tcp:1"/],
    [['serve', '--listen', 'inet:127.0.20.1:0', '--timeout', '-1'], /bad --timeout/],
    [['serve', '--listen', 'inet:127.0.20.1:0', '--max-connections', '0'], /--max-connections/],
    [['serve', '--listen', 'inet:127.0.20.1:0', '--socket-mode', '999'], /bad --socket-mode/],
    [['serve', '--listen', 'inet:127.0.20.1:0', '--json'], /unknown option "--json" \(see smtpdcheck serve --help\)/],
    [['serve', '--listen', 'inet:127.0.20.1:0', '--stop', 'bad\u0001name'], /bad --stop "bad\\x01name"/],
  ])('%j: one line, exit 2', async (args, message) => {
    const result = await runCli(args)
    expect(result.status).toBe(2)
    expect(result.stderr).toMatch(message)
    expect(result.stderr.trim().split('\n')).toHaveLength(1)
    expect(result.stderr).toMatch(/^smtpdcheck: /)
  })

  it('address in use, a live unix socket, a --stop name that does not resolve: one line, exit 2', async () => {
    const dns = await keep(startDns(zone(), {host: '127.0.20.1'}))
    const first = await serve(['--dns-server', dns.address])
    const busy = await runCli(['serve', '--listen', `inet:127.0.20.1:${first.port}`])
    expect(busy.status).toBe(2)
    expect(busy.stderr).toMatch(/^smtpdcheck: cannot listen on inet:127\.0\.20\.1:\d+: EADDRINUSE\n$/)
    const dir = mkdtempSync(join(tmpdir(), 'smtpdcheck-serve-'))
    const live = startTimed([BIN, 'serve', '--listen', `unix:${dir}/policy`], {limitMs: 20_000})
    started.push(live)
    for (let i = 0; i < 200 && !live.output.stderr.includes('listening'); i++) await sleep(20)
    const second = await runCli(['serve', '--listen', `unix:${dir}/policy`])
    expect(second.status).toBe(2)
    expect(second.stderr).toMatch(/another server is listening on it\n$/)
    const stop = await runCli(['serve', '--listen', 'inet:127.0.20.1:0', '--dns-server', dns.address, '--stop', 'nowhere.test'])
    expect(stop.status).toBe(2)
    expect(stop.stderr).toBe('smtpdcheck: cannot resolve --stop "nowhere.test": nxdomain (ENOTFOUND)\n')
  }, 30_000)

  it("contrib/smtpdcheck.service's ExecStart starts and answers (binary and directories replaced)", async () => {
    const unit = readFileSync(new URL('../contrib/smtpdcheck.service', import.meta.url), 'utf8')
    const dir = mkdtempSync(join(tmpdir(), 'smtpdcheck-unit-'))
    const exec = unit.match(/^ExecStart=(.*)$/m)![1]
      .replace(/^smtpdcheck /, `${process.execPath} ${BIN} `) // no directory: systemd finds it on its PATH
      .replaceAll('/run/smtpdcheck/', `${dir}/`)
      .replaceAll('/var/cache/smtpdcheck/', `${dir}/cache/`)
    const words = exec.split(' ')
    const run = startTimed(words.slice(1), {command: words[0], limitMs: 20_000})
    started.push(run)
    for (let i = 0; i < 200 && !run.output.stderr.includes('event=start '); i++) await sleep(20)
    expect(run.output.stderr).toMatch(/event=start listen="?inet:127\.0\.0\.1:10040,unix:/)
    const reply = await new Promise<string>((resolve) => {
      const socket = net.connect({path: `${dir}/policy`})
      let text = ''
      socket.on('connect', () => socket.end(rcpt('a@example.test', {protocol_state: 'DATA'})))
      socket.on('data', (d) => (text += d))
      socket.on('close', () => resolve(text))
      socket.on('error', () => resolve(text))
    })
    expect(reply).toBe(DUNNO)
    run.child.kill('SIGTERM')
    expect((await run.done).status).toBe(0)
    writeFileSync(join(dir, 'done'), '')
  }, 30_000)
})

describe('serve: faults', () => {
  it('the DNS server stops answering mid-run: DUNNO within --timeout; the server recovers when DNS comes back', async () => {
    const primary = await keep(startSmtp({host: PRIMARY, greeting: '220 mx1\r\n'}))
    const names = zone()
    names['other.test'] = {MX: [[10, 'mx1.example.test'], [20, 'mx2.example.test']]}
    const dns = await keep(startDns(names, {host: '127.0.20.1'}))
    const server = await serve(['--dns-server', dns.address, '--port', String(primary.port), '--timeout', '1.5'])
    expect(await ask(server.port, [rcpt('a@example.test', {server_address: SECONDARY})])).toEqual([DEFER('mx1.example.test')])
    for (const entry of Object.values(names)) entry.silent = true
    const t0 = performance.now()
    expect(await ask(server.port, [rcpt('a@other.test', {server_address: SECONDARY})])).toEqual([DUNNO])
    const ms = performance.now() - t0
    expect(ms).toBeGreaterThan(1000)
    expect(ms).toBeLessThan(3500)
    expect((await logged(server, 2)).at(-1)).toMatch(/domain=other\.test decision=dunno .*note="no decision within 1\.5 s"/)
    for (const entry of Object.values(names)) entry.silent = false
    expect(await ask(server.port, [rcpt('a@other.test', {server_address: SECONDARY})])).toEqual([DEFER('mx1.example.test')])
  }, 30_000)

  it('the primary goes away mid-probe (accepts, then closes before greeting): DUNNO at once, not at the deadline', async () => {
    const primary = await keep(startSmtp({host: PRIMARY, greet: (socket) => setTimeout(() => socket.destroy(), 300)}))
    const dns = await keep(startDns(zone(), {host: '127.0.20.1'}))
    const server = await serve(['--dns-server', dns.address, '--port', String(primary.port), '--timeout', '5'])
    const t0 = performance.now()
    expect(await ask(server.port, [rcpt('a@example.test', {server_address: SECONDARY})])).toEqual([DUNNO])
    expect(performance.now() - t0).toBeLessThan(3000)
  }, 30_000)

  it('1,000 simultaneous requests for one domain whose primary greets after 1 s: one connection, every request DEFER within 1.5 s', async () => {
    const primary = await keep(startSmtp({host: PRIMARY, greet: (socket) => setTimeout(() => socket.write('220 slow\r\n'), 1000)}))
    const dns = await keep(startDns(zone(), {host: '127.0.20.1'}))
    const server = await serve(['--dns-server', dns.address, '--port', String(primary.port), '--no-cache'])
    const request = rcpt('a@example.test', {server_address: SECONDARY})
    const t0 = performance.now()
    const answers = await Promise.all(Array.from({length: 50}, () => ask(server.port, Array.from({length: 20}, () => request))))
    const ms = performance.now() - t0
    expect(answers.flat()).toEqual(Array.from({length: 1000}, () => DEFER('mx1.example.test')))
    expect(ms).toBeLessThan(1500 + 1000) // 1.5 s target; slack for a busy 2-core machine
    expect(primary.connections.length).toBe(1)
  }, 30_000)

  it('SIGTERM under load: every request in flight answered, idle connections closed, exit 0 within --timeout + 1 s', async () => {
    const primary = await keep(startSmtp({host: PRIMARY, greet: (socket) => setTimeout(() => socket.write('220 slow\r\n'), 800)}))
    const dns = await keep(startDns(zone(), {host: '127.0.20.1'}))
    const server = await serve(['--dns-server', dns.address, '--port', String(primary.port), '--timeout', '2'])
    const idle = net.connect({host: '127.0.20.1', port: server.port})
    const idleClosed = new Promise((resolve) => idle.on('close', resolve))
    idle.on('error', () => {})
    const request = rcpt('a@example.test', {server_address: SECONDARY})
    const inFlight = Array.from({length: 20}, () => ask(server.port, [request, request, request]))
    await sleep(300)
    const t0 = performance.now()
    server.child.kill('SIGTERM')
    const answers = await Promise.all(inFlight)
    const end = await server.done
    expect(end.status).toBe(0)
    expect(performance.now() - t0).toBeLessThan(3000)
    await idleClosed
    expect(answers.flat()).toEqual(Array.from({length: 60}, () => DEFER('mx1.example.test')))
    expect(end.stderr).toMatch(/event=stopping signal=SIGTERM/)
  }, 30_000)

  it('out of descriptors (ulimit -n 48): no crash; a held connection gets a reply (DEFER, or DUNNO if a probe found no descriptor) and DEFER once the flood is gone', async () => {
    const primary = await keep(startSmtp({host: PRIMARY, greeting: '220 mx1\r\n'}))
    const dns = await keep(startDns(zone(), {host: '127.0.20.1'}))
    const args = ['serve', '--listen', 'inet:127.0.20.1:0', '--dns-server', dns.address, '--port', String(primary.port), '--no-cache']
    const run = startTimed(['-c', 'ulimit -n 48 && exec "$0" "$@"', process.execPath, BIN, ...args], {command: 'bash', limitMs: 60_000})
    started.push(run)
    for (let i = 0; i < 400 && !/event=start /.test(run.output.stderr); i++) await sleep(20)
    const port = Number(/event=start .*inet:127\.0\.20\.1:(\d+)/.exec(run.output.stderr)?.[1])
    const held = net.connect({host: '127.0.20.1', port, localAddress: '127.0.20.3'})
    held.on('error', () => {})
    await new Promise((resolve) => held.once('connect', resolve))
    let closedByServer = 0
    const flood = Array.from({length: 80}, () => {
      const socket = net.connect({host: '127.0.20.1', port, localAddress: '127.0.20.4'})
      socket.on('error', () => {})
      socket.on('close', () => closedByServer++)
      return socket
    })
    await sleep(1000)
    expect(closedByServer).toBeGreaterThan(0) // more connections than descriptors
    let text = ''
    held.setEncoding('latin1').on('data', (d: string) => (text += d))
    held.write(rcpt('a@example.test', {server_address: SECONDARY}))
    for (let i = 0; i < 250 && !text.endsWith('\n\n'); i++) await sleep(20)
    expect([DEFER('mx1.example.test'), DUNNO]).toContain(text)
    for (const socket of flood) socket.destroy()
    await sleep(500)
    expect(run.child.exitCode).toBeNull()
    expect(await ask(port, [rcpt('b@example.test', {server_address: SECONDARY})])).toEqual([DEFER('mx1.example.test')])
    held.destroy()
    expect(run.output.stderr).not.toMatch(/system error: .*(at |Error:)/)
  }, 60_000)
})
