// Issue 6: the hostile-server corpus (fixtures/hostile.js), each case played on loopback
// and judged as SPEC §4/§6 says, in-process through check() + attemptSmtp and through the
// built binary; plus bounded memory against a flood.
import {afterEach, describe, expect, it} from 'vitest'

import {attemptSmtp} from '../src/core/attempt.js'
import {check} from '../src/core/check.js'
import {parseServerList} from '../src/core/grammar.js'
import {MAX_LINE_OCTETS} from '../src/core/greeting.js'
import {createDnsClient} from '../src/core/dns-client.js'
import {systemResolver} from '../src/core/resolve.js'
import {flood, hostileCases, type HostileCase} from '../fixtures/hostile.js'
import {startSmtp, until} from '../fixtures/smtp.js'
import {runCli} from './cli.js'

const open: Array<{close: () => Promise<void>}> = []
afterEach(async () => {
  for (const s of open.splice(0)) await s.close()
})
async function serve(greet: HostileCase['greet']) {
  const server = await startSmtp({host: '127.0.0.1', greet})
  open.push(server)
  return server
}

/** Slack on top of a budget for a busy 2-core machine (the budget itself is the claim). */
const SLACK_MS = 1500
/** What the server must have received: QUIT after a final 220, nothing otherwise. */
const expectedSent = (c: HostileCase, line: string | undefined) =>
  c.sent ?? (c.outcome === 'available' && line?.startsWith('220 ') ? 'QUIT\r\n' : '')

describe('hostile servers, in-process (check() + attemptSmtp)', () => {
  for (const c of hostileCases) {
    it(`${c.name} → ${c.outcome}${c.code ? ` ${c.code}` : ''}`, async () => {
      const server = await serve(c.greet)
      const t0 = performance.now()
      const report = await check(
        {entries: parseServerList(['127.0.0.1']), timeoutMs: c.budgetMs, port: server.port, attemptDelayMs: 250, sequential: false},
        {resolver: systemResolver(createDnsClient()), attempt: attemptSmtp, now: () => performance.now()},
      )
      const ms = performance.now() - t0
      const [probe] = report.servers
      expect(probe.attempts).toHaveLength(1)
      const [attempt] = probe.attempts
      expect(attempt.outcome).toBe(c.outcome)
      expect(probe.available).toBe(c.outcome === 'available')
      expect(report.exitCode).toBe(c.outcome === 'available' ? 1 : 0)
      if (c.code) expect(attempt.code).toBe(c.code)
      if (attempt.line !== undefined) expect(attempt.line.length).toBeLessThanOrEqual(MAX_LINE_OCTETS)
      expect(ms).toBeLessThan(c.budgetMs + SLACK_MS)
      if (c.atBudget) expect(ms).toBeGreaterThanOrEqual(c.budgetMs - 50)
      // The connection is closed by us (a deaf server cannot tell), and only what SPEC §4 allows was sent.
      await until(() => server.connections.length === 1 && (c.deaf || server.connections[0].closed), 3000)
      expect(server.sent()).toEqual([expectedSent(c, attempt.line)])
    })
  }
})

describe.concurrent('hostile servers, built binary (--json)', () => {
  for (const c of hostileCases) {
    it(`${c.name} → exit ${c.outcome === 'available' ? 1 : 0}, ${c.outcome}`, async () => {
      // Concurrent tests: each closes its own server (afterEach would close the others').
      const server = await startSmtp({host: '127.0.0.1', greet: c.greet})
      const r = await runCli(['--no-cache', '--json', '--timeout', String(c.budgetMs / 1000), '--port', String(server.port), '127.0.0.1'])
      await server.close()
      expect(r.stderr).toBe('')
      expect(r.status).toBe(c.outcome === 'available' ? 1 : 0)
      const json = JSON.parse(r.stdout)
      const [attempt] = json.entries[0].attempts
      expect(attempt.outcome).toBe(c.outcome)
      if (c.code) expect(attempt.code).toBe(c.code)
      // Process start is included: generous.
      expect(r.ms).toBeLessThan(c.budgetMs + 5000)
    })
  }
})

describe('bounded memory (SPEC §4: at most a few KiB per connection)', () => {
  /** Peak RSS (KiB) of one run of the binary, reported by the process itself at exit. */
  const peakRss = async (port: number) => {
    const hook = `process.on('exit', () => process.stderr.write('maxrss=' + process.resourceUsage().maxRSS + '\\n'))`
    const env = {...process.env, NODE_OPTIONS: `--import=data:text/javascript;base64,${Buffer.from(hook).toString('base64')}`}
    const r = await runCli(['--no-cache', '--timeout', '5', '--port', String(port), '127.0.0.1'], {env})
    const match = /maxrss=(\d+)/.exec(r.stderr)
    expect(match, r.stderr).not.toBeNull()
    return {status: r.status, kib: Number(match![1])}
  }

  it('an endless line costs the client no more memory than a plain 220 (peak RSS, generous)', async () => {
    const plain = await serve((s) => s.write('220 mail ESMTP\r\n'))
    let flooded = 0
    const endless = await serve((s) => {
      s.on('close', () => (flooded = s.bytesWritten))
      flood(s, Buffer.alloc(256 * 1024, 'M'))
    })
    const base = await peakRss(plain.port)
    const hostile = await peakRss(endless.port)
    expect(base.status).toBe(1)
    expect(hostile.status).toBe(0)
    await until(() => endless.connections[0]?.closed, 3000)
    // The server got MiBs out before we hung up; a client that kept them would show them
    // in its peak RSS. Allow 16 MiB of noise (GC timing, JIT).
    expect(flooded).toBeGreaterThan(1024 * 1024)
    expect(hostile.kib - base.kib).toBeLessThan(16 * 1024)
  })

  it('in-process: 50 probes of a 1 MiB line grow the heap by less than 8 MiB', async () => {
    const big = Buffer.alloc(1024 * 1024, 'A')
    const server = await serve((s) => s.write(big))
    const run = () => attemptSmtp('127.0.0.1', server.port, new AbortController().signal)
    for (let i = 0; i < 5; i++) await run() // warm-up
    const before = process.memoryUsage()
    for (let i = 0; i < 50; i++) expect((await run()).outcome).toBe('not-smtp')
    await until(() => server.connections.every((c) => c.closed), 3000)
    const after = process.memoryUsage()
    // 50 × 1 MiB kept would be 50 MiB; what each attempt holds is one 514-octet buffer.
    expect(after.heapUsed + after.arrayBuffers - (before.heapUsed + before.arrayBuffers)).toBeLessThan(8 * 1024 * 1024)
  })
})
