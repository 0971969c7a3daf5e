// `smtpdcheck serve` for the people who run it (issue 21, SPEC §11), through the built
// binary: reload and stats signals under load, the key=value log read by a strict parser,
// journald priorities, the start-up line, the metrics endpoint read by an HTTP client, the
// dead-primary timeline, --query, --listen with a host name, --stdio. Loopback range
// 127.50.0.0/16; every loop is bounded in count and time.
import {chmodSync, closeSync, fstatSync, mkdtempSync, openSync, readFileSync, rmSync} from 'node:fs'
import net from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import fc from 'fast-check'
import {afterEach, describe, expect, it} from 'vitest'

import {startDns} from '../fixtures/dns.js'
import {startSmtp} from '../fixtures/smtp.js'
import {startTimed} from '../fixtures/spawn.js'
import {BIN, runCli} from './cli.js'
import {closedAfterEach} from './fixtures.js'
import {DEFER, DUNNO, rcpt} from './policy/client.js'
import {mxZone} from './serve-harness.js'

const keep = closedAfterEach()
const HOST = '127.50.0.1'
const CLIENT = '127.50.0.2'
const PRIMARY = '127.50.0.10'
const SECONDARY = '127.50.0.20'
type Run = ReturnType<typeof startTimed>
const started: Run[] = []
afterEach(() => {
  for (const {child} of started.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
})

const zone = () => mxZone(PRIMARY, SECONDARY)

/** A primary greeting at once, the DNS fixture, and `serve --listen inet:HOST:0 … args`. */
async function world(args: string[] = [], options: {listen?: string; env?: NodeJS.ProcessEnv; stdio?: Parameters<typeof startTimed>[1]['stdio']} = {}) {
  const primary = await keep(startSmtp({host: PRIMARY, greeting: '220 mx1 ESMTP\r\n'}))
  const dns = await keep(startDns(zone(), {host: HOST}))
  const run = startTimed([BIN, 'serve', '--listen', options.listen ?? `inet:${HOST}:0`, '--dns-server', dns.address, '--port', String(primary.port), ...args], {limitMs: 120_000, env: options.env, stdio: options.stdio})
  started.push(run)
  return {primary, dns, run}
}

/** Wait (bounded) until `pattern` is in what `text()` returns. */
async function waitFor(text: () => string, pattern: RegExp, ms = 8000): Promise<RegExpExecArray | null> {
  for (let i = 0; i < ms / 20; i++) {
    const match = pattern.exec(text())
    if (match) return match
    await sleep(20)
  }
  return pattern.exec(text())
}

/** Wait (bounded) until `predicate()` holds. */
async function until(predicate: () => boolean, ms = 8000): Promise<void> {
  for (let i = 0; i < ms / 20 && !predicate(); i++) await sleep(20)
}

const count = (text: string, word: string) => text.split(word).length - 1

const startPort = async (run: Run, host = HOST) => Number((await waitFor(() => run.output.stderr, new RegExp(`event=start listen=\\S*?inet:${host.replaceAll('.', '\\.')}:(\\d+)`)))?.[1])

/** One connection; `send(request)` resolves with its reply (replies come in request order). */
async function connection(port: number, host = HOST) {
  const socket = net.connect({host, port, localAddress: host.startsWith('127.50.') ? CLIENT : undefined})
  socket.on('error', () => {})
  await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject))
  let text = ''
  const waiting: Array<(reply: string) => void> = []
  socket.setEncoding('latin1').on('data', (chunk: string) => {
    text += chunk
    for (let end = text.indexOf('\n\n'); end >= 0 && waiting.length > 0; end = text.indexOf('\n\n')) {
      waiting.shift()!(text.slice(0, end + 2))
      text = text.slice(end + 2)
    }
  })
  return {
    send: (request: string) => new Promise<string>((resolve) => {
      waiting.push(resolve)
      socket.write(request)
    }),
    close: () => socket.destroy(),
  }
}

/**
 * A strict reader of one log line: `[<N>]smtpdcheck: ` then `key=value` pairs separated by
 * one space; a value is a run of printable characters without space, `"`, `\` or `=`, or a
 * JSON string. Anything else (a stray quote, a raw control character, a repeated key) throws.
 */
function parseLine(line: string): {priority?: number; fields: Record<string, string>} {
  const head = /^(?:<([0-7])>)?smtpdcheck: /.exec(line)
  if (!head) throw new Error(`no smtpdcheck: tag: ${JSON.stringify(line)}`)
  const pair = /^([a-z][a-z0-9_]*)=(?:"((?:[^"\\\u0000-\u001f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*)"|([^\s"\\=\u0000-\u001f\u007f-\u009f]+))(?: (?=[a-z])|$)/
  const fields: Record<string, string> = {}
  let rest = line.slice(head[0].length)
  while (rest !== '') {
    const match = pair.exec(rest)
    if (!match) throw new Error(`not key=value at ${JSON.stringify(rest)} in ${JSON.stringify(line)}`)
    if (Object.hasOwn(fields, match[1])) throw new Error(`key ${match[1]} twice in ${JSON.stringify(line)}`)
    fields[match[1]] = match[2] === undefined ? match[3] : (JSON.parse(`"${match[2]}"`) as string)
    rest = rest.slice(match[0].length)
  }
  return {priority: head[1] === undefined ? undefined : Number(head[1]), fields}
}

const logLines = (stderr: string) => stderr.split('\n').filter((line) => line !== '')
const events = (stderr: string, event: string) => logLines(stderr).map((l) => parseLine(l).fields).filter((f) => f.event === event)

describe('serve: signals', () => {
  it('SIGUSR1 and SIGHUP under load: no request lost, stats and reload logged, DNS answers forgotten, still serving; exit 0 on SIGTERM', async () => {
    const {dns, run} = await world(['--timeout', '3'])
    const port = await startPort(run)
    const clients = await Promise.all(Array.from({length: 4}, () => connection(port)))
    let sent = 0
    let answered = 0
    const bad: string[] = []
    const deadline = performance.now() + 3000
    const load = clients.map(async (client, i) => {
      for (let n = 0; n < 400 && performance.now() < deadline; n++) {
        sent++
        const domain = i % 2 === 0 ? 'example.test' : 'only.test'
        const reply = await client.send(rcpt(`u${n}@${domain}`, {server_address: SECONDARY}))
        if (reply === (domain === 'example.test' ? DEFER('mx1.example.test') : DUNNO)) answered++
        else bad.push(reply)
        await sleep(10)
      }
    })
    const mxAsked = () => dns.queries.filter((q) => q.name === 'example.test' && q.type === 'MX').length
    await sleep(500)
    const before = mxAsked()
    for (const signal of ['SIGUSR1', 'SIGHUP', 'SIGUSR1', 'SIGHUP'] as const) {
      run.child.kill(signal)
      await sleep(500)
    }
    await Promise.all(load)
    expect(bad).toEqual([])
    expect(answered).toBe(sent)
    expect(sent).toBeGreaterThan(40)
    expect(mxAsked()).toBeGreaterThan(before) // a reload forgets the DNS answers (kept 30 s otherwise)
    const after = await connection(port)
    expect(await after.send(rcpt('late@example.test', {server_address: SECONDARY}))).toBe(DEFER('mx1.example.test'))
    for (const c of [...clients, after]) c.close()
    await until(() => count(run.output.stderr, 'event=stats') >= 4)
    const stats = events(run.output.stderr, 'stats')
    expect(stats).toHaveLength(4)
    expect(events(run.output.stderr, 'reload')).toHaveLength(2)
    expect(Number(stats[3].requests)).toBeGreaterThan(Number(stats[0].requests))
    for (const key of ['requests', 'defer', 'dunno', 'timeout', 'cache_hits', 'probes', 'timeouts', 'p50_ms', 'p99_ms', 'connections', 'evictions']) expect(stats[0]).toHaveProperty(key)
    expect(stats[1].reloads).toBe('1')
    run.child.kill('SIGTERM')
    const end = await run.done
    expect(end.status).toBe(0)
    expect(end.signal).toBeNull()
  }, 60_000)
})

describe('serve: the log', () => {
  it('every line is strict key=value; a hostile domain and Postfix attributes are logged as sent, escaped; never a local part', async () => {
    const {run} = await world(['--timeout', '2'])
    const port = await startPort(run)
    const client = await connection(port)
    const char = fc.constantFrom('a', 'b', '.', '-', '"', '\\', '=', ' ', '\t', '\x01', '\x1b', '\x7f', '\u0085', 'é', '\u2028', '\r', '[', ']', '%', '{')
    const hostile = fc.array(char, {minLength: 1, maxLength: 40}).map((cs) => cs.join('')).filter((s) => /["\\]/.test(s) && !s.endsWith('\r'))
    const samples = fc.sample(fc.record({domain: hostile, queue: hostile}), {numRuns: 60, seed: 21})
    for (const {domain, queue} of samples) expect(await client.send(rcpt(`secret.local@${domain}`, {queue_id: queue, instance: 'a1.b2'}))).toBe(DUNNO)
    expect(await client.send(rcpt('secret.local@example.test', {server_address: SECONDARY, queue_id: '4XYZ12'}))).toBe(DEFER('mx1.example.test'))
    client.close()
    await until(() => count(run.output.stderr, 'event=decision') >= samples.length + 1)
    run.child.kill('SIGTERM')
    const {stderr, status} = await run.done
    expect(status).toBe(0)
    expect(stderr).not.toContain('secret')
    const lines = logLines(stderr).map(parseLine) // throws on any line a strict parser refuses
    const decisions = lines.map((l) => l.fields).filter((f) => f.event === 'decision')
    expect(decisions).toHaveLength(samples.length + 1)
    decisions.slice(0, -1).forEach((fields, i) => {
      expect(fields).toMatchObject({level: 'info', decision: 'dunno', domain: samples[i].domain, queue_id: samples[i].queue, instance: 'a1.b2', client_address: '192.0.2.9'})
      expect(fields.note).toMatch(samples[i].domain.startsWith('[') ? /^recipient domain is an address literal$/ : /^malformed recipient domain: /)
    })
    expect(decisions.at(-1)).toMatchObject({domain: 'example.test', decision: 'defer', server: 'mx1.example.test', queue_id: '4XYZ12', cached: 'no'})
  }, 60_000)

  it('start-up line: endpoints, identities, cache and TTLs; an untrusted --cache-file directory is a WARNING at start; journald priorities when stderr is the journal', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'smtpdcheck-ops-'))
    const cacheDir = join(dir, 'open')
    await import('node:fs').then((fs) => fs.mkdirSync(cacheDir))
    chmodSync(cacheDir, 0o777)
    const logPath = join(dir, 'stderr')
    const fd = openSync(logPath, 'w')
    const {ino, dev} = fstatSync(fd)
    try {
      const {run} = await world(['--stop', SECONDARY, '--cache-file', join(cacheDir, 'cache.json'), '--positive-ttl', '20'], {env: {...process.env, JOURNAL_STREAM: `${dev}:${ino}`}, stdio: ['ignore', 'pipe', fd]})
      const start = await waitFor(() => readFileSync(logPath, 'utf8'), /event=start .*\n/)
      expect(start).not.toBeNull()
      run.child.kill('SIGTERM')
      expect((await run.done).status).toBe(0)
      const lines = logLines(readFileSync(logPath, 'utf8')).map(parseLine)
      const warning = lines.find((l) => l.fields.event === 'cache')
      expect(warning).toMatchObject({priority: 4, fields: {level: 'warning', cache_file: join(cacheDir, 'cache.json')}})
      expect(warning!.fields.msg).toMatch(/writable by group or others/)
      const begin = lines.find((l) => l.fields.event === 'start')!
      expect(begin.priority).toBe(6)
      expect(begin.fields).toMatchObject({identities: `server_address, --stop ${SECONDARY}`, cache: 'memory', positive_ttl: '20', negative_ttl: '60', timeout: '10'})
      expect(begin.fields.listen).toMatch(/^inet:127\.50\.0\.1:\d+$/)
      expect(begin.fields.cache_note).toMatch(/^file not used: .*writable by group or others/)
      expect(lines.indexOf(warning!)).toBeLessThan(lines.indexOf(begin))
    } finally {
      closeSync(fd)
      rmSync(dir, {recursive: true, force: true})
    }
  }, 30_000)

  it('without the journal (JOURNAL_STREAM naming another stream, or unset) lines carry no <N> prefix', async () => {
    const {run} = await world(['--no-cache'], {env: {...process.env, JOURNAL_STREAM: '1:1'}})
    await startPort(run)
    run.child.kill('SIGTERM')
    const {stderr} = await run.done
    expect(stderr).toMatch(/^smtpdcheck: level=info event=start .* cache=off cache_note=--no-cache /)
    expect(stderr).not.toMatch(/^</m)
  }, 30_000)
})

describe('serve: --metrics', () => {
  it('GET /metrics is Prometheus text whose counters match the requests sent; anything else 404', async () => {
    const {primary, run} = await world(['--metrics', `inet:${HOST}:0`, '--timeout', '2'])
    const port = await startPort(run)
    const metrics = (await waitFor(() => run.output.stderr, /metrics=inet:([\d.]+:\d+)/))![1]
    const client = await connection(port)
    for (let i = 0; i < 5; i++) expect(await client.send(rcpt(`a${i}@example.test`, {server_address: SECONDARY}))).toBe(DEFER('mx1.example.test'))
    for (let i = 0; i < 3; i++) expect(await client.send(rcpt(`b${i}@only.test`, {server_address: SECONDARY}))).toBe(DUNNO)
    for (let i = 0; i < 2; i++) expect(await client.send(rcpt(`c${i}@example.test`, {protocol_state: 'DATA'}))).toBe(DUNNO)
    const response = await fetch(`http://${metrics}/metrics`)
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
    const text = await response.text()
    const value = (sample: string) => {
      const line = text.split('\n').find((l) => l.startsWith(`${sample} `))
      if (line === undefined) throw new Error(`no sample ${sample} in:\n${text}`)
      return Number(line.slice(sample.length + 1))
    }
    expect(value('smtpdcheck_requests_total')).toBe(10)
    expect(value('smtpdcheck_decisions_total{decision="defer"}')).toBe(5)
    expect(value('smtpdcheck_decisions_total{decision="dunno"}')).toBe(3)
    expect(value('smtpdcheck_decisions_total{decision="not-asked"}')).toBe(2)
    expect(value('smtpdcheck_decisions_total{decision="timeout"}')).toBe(0)
    expect(value('smtpdcheck_probes_total')).toBe(primary.connections.length)
    expect(value('smtpdcheck_cache_hits_total')).toBeGreaterThanOrEqual(4)
    expect(value('smtpdcheck_connections')).toBe(1)
    expect(value('smtpdcheck_decision_seconds_count')).toBe(8)
    expect(value('smtpdcheck_decision_seconds{quantile="0.99"}')).toBeGreaterThanOrEqual(value('smtpdcheck_decision_seconds{quantile="0.5"}'))
    for (const line of text.split('\n').filter((l) => l && !l.startsWith('#'))) expect(line).toMatch(/^smtpdcheck_[a-z_]+(\{[a-z]+="[^"]*"\})? (-?\d+(\.\d+)?(e[+-]\d+)?|NaN)$/)
    expect((await fetch(`http://${metrics}/`)).status).toBe(404)
    expect((await fetch(`http://${metrics}/metrics`, {method: 'POST', body: 'x'})).status).toBe(404)
    client.close()
    run.child.kill('SIGTERM')
    expect((await run.done).status).toBe(0)
  }, 30_000)
})

describe('serve: freshness', () => {
  it('a primary that stops answering gets its first DUNNO within 6 s under 20 requests/s (positive TTL 30 s); no request waits on a probe', async () => {
    const {primary, run} = await world(['--timeout', '5'])
    const port = await startPort(run)
    const client = await connection(port)
    const results: Array<{sentAt: number; reply: string; ms: number}> = []
    let stoppedAt = Infinity
    const pending: Array<Promise<void>> = []
    const begin = performance.now()
    for (let n = 0; n < 500; n++) {
      const now = performance.now()
      if (now - begin > 3000 && stoppedAt === Infinity) {
        await primary.close()
        stoppedAt = performance.now()
      }
      if (now - stoppedAt > 15_000 || results.some((r) => r.sentAt > stoppedAt && r.reply === DUNNO)) break
      const sentAt = performance.now()
      pending.push(client.send(rcpt(`r${n}@example.test`, {server_address: SECONDARY})).then((reply) => void results.push({sentAt, reply, ms: performance.now() - sentAt})))
      await sleep(50)
    }
    await Promise.all(pending)
    client.close()
    const before = results.filter((r) => r.sentAt < stoppedAt)
    expect(before.length).toBeGreaterThan(30)
    expect(before.every((r) => r.reply === DEFER('mx1.example.test'))).toBe(true)
    const firstDunno = results.find((r) => r.sentAt > stoppedAt && r.reply === DUNNO)
    expect(firstDunno, 'no DUNNO within 15 s of the primary stopping').toBeDefined()
    expect(firstDunno!.sentAt - stoppedAt).toBeLessThan(6000)
    expect(Math.max(...results.map((r) => r.ms))).toBeLessThan(1500)
    run.child.kill('SIGTERM')
    expect((await run.done).status).toBe(0)
  }, 60_000)
})

describe('serve: --query, --listen with a name, --stdio', () => {
  it('--query asks a running serve what Postfix asks: the action on stdout, exit 1 / 0, and 2 when nothing answers', async () => {
    const {run} = await world()
    const port = await startPort(run)
    const defer = await runCli(['serve', '--query', `inet:${HOST}:${port}`, '--recipient', 'user@example.test', '--server-address', SECONDARY])
    expect(defer).toMatchObject({status: 1, stdout: 'action=DEFER_IF_PERMIT 4.7.1 Please use server mx1.example.test\n', stderr: ''})
    const dunno = await runCli(['serve', '--query', `inet:${HOST}:${port}`, '--recipient', 'user@only.test', '--server-address', SECONDARY])
    expect(dunno).toMatchObject({status: 0, stdout: 'action=DUNNO\n', stderr: ''})
    run.child.kill('SIGTERM')
    expect((await run.done).status).toBe(0)
    const refused = await runCli(['serve', '--query', `inet:${HOST}:${port}`, '--recipient', 'user@example.test'])
    expect(refused).toMatchObject({status: 2, stdout: ''})
    expect(refused.stderr).toMatch(/^smtpdcheck: cannot ask inet:127\.50\.0\.1:\d+: ECONNREFUSED\n$/)
    const usage = await runCli(['serve', '--query', `inet:${HOST}:${port}`])
    expect(usage).toMatchObject({status: 2, stdout: '', stderr: 'smtpdcheck: --query needs --recipient ADDRESS\n'})
  }, 30_000)

  it('--listen inet:localhost:0 listens on the addresses of localhost, resolved at start', async () => {
    const {run} = await world(['--no-cache'], {listen: 'inet:localhost:0'})
    const port = await startPort(run, '127.0.0.1')
    expect(port).toBeGreaterThan(0)
    const client = await connection(port, '127.0.0.1')
    expect(await client.send(rcpt('user@example.test', {server_address: SECONDARY}))).toBe(DEFER('mx1.example.test'))
    client.close()
    run.child.kill('SIGTERM')
    expect((await run.done).status).toBe(0)
  }, 30_000)

  it('--stdio answers the requests on standard input, exits 0 at its end; a second process shares --cache-file', async () => {
    const primary = await keep(startSmtp({host: PRIMARY, greeting: '220 mx1 ESMTP\r\n'}))
    const dns = await keep(startDns(zone(), {host: HOST}))
    const dir = mkdtempSync(join(tmpdir(), 'smtpdcheck-ops-'))
    try {
      const once = async () => {
        const run = startTimed([BIN, 'serve', '--stdio', '--dns-server', dns.address, '--port', String(primary.port), '--cache-file', join(dir, 'cache.json')], {limitMs: 20_000, stdio: ['pipe', 'pipe', 'pipe']})
        started.push(run)
        run.child.stdin!.end(rcpt('a@example.test', {server_address: SECONDARY}) + rcpt('b@only.test', {server_address: SECONDARY}))
        return run.done
      }
      const first = await once()
      expect(first).toMatchObject({status: 0, stdout: DEFER('mx1.example.test') + DUNNO})
      expect(first.stderr).toMatch(/event=start listen=stdio /)
      expect(primary.connections).toHaveLength(1)
      const second = await once()
      expect(second).toMatchObject({status: 0, stdout: DEFER('mx1.example.test') + DUNNO})
      // Answered from the file the first one wrote (the entry, over 2 s old, may be re-probed in the background).
      expect(second.stderr).toMatch(/event=decision request=1 domain=example\.test decision=defer server=mx1\.example\.test ms=\d+ cached=yes/)
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  }, 30_000)
})
