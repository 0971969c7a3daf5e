// Issue 15, --json and --verbose through the binary, on loopback fixtures (127.0.15.0/24):
// `probed` only after a connection attempt, the `options` object, the error object of an
// exit-2 run, one clock for every --verbose line, the header line, the cache wording.
// Every document is held to docs/report.schema.json (test/schema.ts).
import {mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {startDns} from '../fixtures/dns.js'
import {closedPort, startSmtp} from '../fixtures/smtp.js'
import {runCli, type CliResult} from './cli.js'
import {closedAfterEach} from './fixtures.js'
import {validate} from './schema.js'

const keep = closedAfterEach()
let dns: Awaited<ReturnType<typeof startDns>>

beforeAll(async () => {
  dns = await startDns({
    'v6only.test': {AAAA: ['::1']},
    'slow.test': {A: ['127.0.15.1'], delayMs: 3000},
    'silent.test': {silent: true},
    'late.test': {MX: [[10, '127.0.15.1']], delayMs: 200},
    'fail.test': {servfail: true},
  }, {host: '127.0.15.53'})
})
afterAll(async () => {
  await dns.close()
})

/** The document a --json run printed, checked against the schema. */
function documentOf(r: CliResult) {
  const doc = JSON.parse(r.stdout)
  expect(validate(doc)).toEqual([])
  return doc
}

describe('--json probed: true only when a connection was attempted', () => {
  it.each([
    ['a lookup that ran out', ['--timeout', '0.3', 'slow.test'], 'slow.test'],
    ['-4 on an IPv6-only host', ['-4', 'v6only.test'], 'v6only.test'],
    ['an unspecified address', ['0.0.0.0'], '0.0.0.0'],
  ])('%s: probed false, no attempt', async (_name, args, server) => {
    const r = await runCli(['--no-cache', '--json', '--dns-server', dns.address, ...args])
    expect(r.status).toBe(0)
    const [entry] = documentOf(r).entries
    expect(entry).toMatchObject({name: server, candidate: true, probed: false, attempts: []})
  })

  it('a refused connection: probed true, one attempt', async () => {
    const port = await closedPort('127.0.15.2')
    const r = await runCli(['--no-cache', '--json', '--port', String(port), '127.0.15.2'])
    const [entry] = documentOf(r).entries
    expect(entry).toMatchObject({probed: true, attempts: [{outcome: 'refused'}]})
  })

  it('a cached outcome is no connection: probed false the second time', async () => {
    const port = await closedPort('127.0.15.3')
    const args = ['--json', '--cache-file', join(mkdtempSync(join(tmpdir(), 'ux-json-')), 'c.json'), '--port', String(port), '127.0.15.3']
    expect(documentOf(await runCli(args)).entries[0].probed).toBe(true)
    const again = documentOf(await runCli(args)).entries[0]
    expect(again).toMatchObject({probed: false, attempts: [{outcome: 'cached', cachedAs: 'unavailable'}]})
  })
})

describe('--json options: the settings in force', () => {
  it('defaults, and every option given', async () => {
    const defaults = documentOf(await runCli(['--no-cache', '--json', '0.0.0.0'])).options
    expect(defaults).toEqual({port: 25, timeout: 10, family: null, resolver: 'system', attemptDelayMs: 250, sequential: false, cache: null, ttls: {negative: 60, positive: 0}})
    const file = join(mkdtempSync(join(tmpdir(), 'ux-json-')), 'c.json')
    const given = ['--json', '--port', '2525', '--timeout', '2.5', '-6', '--dns-server', '127.0.15.53:5353', '--attempt-delay', '40', '--sequential',
      '--cache-file', file, '--negative-ttl', '30', '--positive-ttl', '5', '0.0.0.0']
    expect(documentOf(await runCli(given)).options).toEqual({port: 2525, timeout: 2.5, family: 6, resolver: '127.0.15.53:5353', attemptDelayMs: 40,
      sequential: true, cache: file, ttls: {negative: 30, positive: 5}})
  })
})

describe('--json on exit 2: an error object on stdout, the same line on stderr', () => {
  it.each([
    ['usage', ['--verb', '127.0.0.1'], 'unknown option "--verb"; did you mean --verbose? (see smtpdcheck --help)'],
    ['usage', ['--stop', '--json', 'a'], 'option "--stop" needs a value'],
    ['usage', ['127.0.0.1:2525'], 'bad server "127.0.0.1:2525": a port goes in --port, not in the server word (--port 2525 127.0.0.1)'],
    ['stop-lookup', ['--stop', 'silent.test', '--timeout', '0.3', '127.0.15.1'], 'cannot resolve --stop "silent.test": dns-error (ETIMEOUT)'],
    ['mx-lookup', ['--mx', 'fail.test'], 'cannot look up the MX records of "fail.test"'],
  ])('%s: %j', async (kind, args, message) => {
    const r = await runCli(['--no-cache', '--json', '--dns-server', dns.address, ...args])
    expect(r.status).toBe(2)
    const doc = documentOf(r)
    expect(doc).toEqual({error: {kind, message: expect.stringContaining(message)}})
    expect(r.stderr).toBe(`smtpdcheck: ${doc.error.message}\n`)
  })

  it('control characters in the message are escaped as on stderr', async () => {
    const r = await runCli(['--no-cache', '--json', 'a\x1b[31mb'])
    const doc = documentOf(r)
    expect(doc.error.message).toBe('bad server "a\\x1b[31mb": bad label "a\\x1b[31mb" (letters, digits and inner hyphens only)')
    expect(r.stderr).toBe(`smtpdcheck: ${doc.error.message}\n`)
  })

  it('without --json, nothing on stdout', async () => {
    expect(await runCli(['--no-cache', '--verb', '127.0.0.1'])).toMatchObject({stdout: '', status: 2})
  })
})

/** The --verbose lines as [ms, text]. */
const traceOf = (r: CliResult) => r.stderr.trimEnd().split('\n').map((line) => {
  const m = /^\+ *(\d+)ms (.*)$/.exec(line)
  expect(m, line).not.toBeNull()
  return [Number(m![1]), m![2]] as const
})

describe('--verbose: one clock, a header, cache lines like every other line', () => {
  it('--mx and the probes share the run clock: the times never go back', async () => {
    const smtp = await keep(startSmtp({host: '127.0.15.1', greeting: '220 up\r\n'}))
    const r = await runCli(['--no-cache', '--verbose', '--dns-server', dns.address, '--port', String(smtp.port), '--mx', 'late.test'])
    expect(r).toMatchObject({stdout: '127.0.15.1\n', status: 1})
    const trace = traceOf(r)
    const times = trace.map(([ms]) => ms)
    expect(times).toEqual([...times].sort((a, b) => a - b))
    const servers = trace.find(([, text]) => text.startsWith('servers:'))!
    expect(servers[0]).toBeGreaterThanOrEqual(150) // after the MX answer (delayed 200 ms), not +0ms again
  })

  it('the first line is the settings; a first run says "no cache yet", stamped; the selection line is short', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'ux-verbose-')), 'c.json')
    const port = await closedPort('127.0.15.4')
    const r = await runCli(['--verbose', '--cache-file', file, '--port', String(port), '--dns-server', dns.address, '127.0.15.4'])
    expect(r.status).toBe(0)
    const trace = traceOf(r)
    expect(trace[0]).toEqual([0, `settings: port ${port}, timeout 10s, IPv4 and IPv6, all at once, next address after 250ms, resolver ${dns.address}, cache ${file} (TTLs 60s unavailable, 0s available)`])
    expect(trace.filter(([, text]) => text.startsWith('settings:'))).toHaveLength(1)
    expect(trace.map(([, text]) => text)).toContain(`cache: no cache yet (${file} does not exist)`)
    expect(trace.map(([, text]) => text)).toContain(`cache: wrote 1 entry to ${file}`)
    expect(trace.map(([, text]) => text)).toContain('candidates: 127.0.15.4 (no entry is the local host)')
    const second = traceOf(await runCli(['--verbose', '--cache-file', file, '--port', String(port), '--stop', '127.0.15.5', '127.0.15.4', '127.0.15.5']))
    expect(second.map(([, text]) => text)).toContain(`cache: 1 entry in ${file}`)
    expect(second.map(([, text]) => text)).toContain('candidates: 127.0.15.4; local host: 127.0.15.5')
    expect(r.stderr.split('\n').every((line) => line.length <= 200)).toBe(true)
  })

  it('--no-cache and -4 --sequential --timeout 0 are said in the header', async () => {
    const r = await runCli(['--verbose', '--no-cache', '-4', '--sequential', '--timeout', '0', '--stop', '127.0.15.9', '127.0.15.9'])
    expect(traceOf(r)[0][1]).toBe('settings: port 25, timeout none, IPv4 only, one server at a time, next address after 250ms, resolver system, no cache (--no-cache)')
  })
})
