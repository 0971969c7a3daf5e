// The cache through the built binary (SPEC §5, issue 5), against real loopback servers
// whose connections are counted: a dead primary is not probed again within the TTL, and a
// cache file that is missing, corrupt, untrusted or unwritable never changes the answer.
import {execFile} from 'node:child_process'
import {chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'
import {afterAll, describe, expect, it} from 'vitest'

import {MAX_FILE_BYTES, parseCache} from '../src/core/cache-file.js'
import {startBlackhole, startSmtp} from '../fixtures/smtp.js'
import {runCli} from './cli.js'
import {closedAfterEach} from './fixtures.js'

const root = mkdtempSync(join(tmpdir(), 'smtpdcheck-cache-e2e-'))
afterAll(() => rmSync(root, {recursive: true, force: true}))
const freshDir = () => mkdtempSync(join(root, 'd'))

const keep = closedAfterEach()

/** A primary on 127.0.0.1 that answers 421 (counted) and a live secondary on 127.0.0.2, one port. */
async function deadPrimaryLiveSecondary() {
  const primary = await keep(startSmtp({host: '127.0.0.1', greeting: '421 primary down\r\n'}))
  // The secondary greets a little late, so that the primary's 421 is in before the answer.
  const secondary = await keep(startSmtp({host: '127.0.0.2', port: primary.port, greet: (s) => void setTimeout(() => s.write('220 secondary ESMTP\r\n'), 150)}))
  return {primary, secondary, port: String(primary.port)}
}
const MXES = ['--stop', '127.0.0.3', '10:127.0.0.1', '20:127.0.0.2', '30:127.0.0.3']

/** The attempt outcomes of each entry in a --json run. */
function outcomes(stdout: string): Record<string, string[]> {
  const doc = JSON.parse(stdout) as {entries: Array<{name: string; attempts: Array<{outcome: string; cachedAs: string | null}>}>}
  return Object.fromEntries(doc.entries.map((e) => [e.name, e.attempts.map((a) => (a.cachedAs ? `cached ${a.cachedAs}` : a.outcome))]))
}

describe('a dead primary is not probed again within the negative TTL', () => {
  it('421 primary, live secondary: the second run makes no connection to the primary', async () => {
    const {primary, secondary, port} = await deadPrimaryLiveSecondary()
    const file = join(freshDir(), 'cache.json')
    const first = await runCli(['--cache-file', file, '--port', port, ...MXES])
    expect(first).toMatchObject({stdout: '127.0.0.2\n', stderr: '', status: 1})
    expect(primary.connections.length).toBe(1)
    const second = await runCli(['--cache-file', file, '--port', port, '--json', ...MXES])
    expect(second.status).toBe(1)
    expect(outcomes(second.stdout)).toEqual({'127.0.0.1': ['cached unavailable'], '127.0.0.2': ['available'], '127.0.0.3': []})
    expect(primary.connections.length).toBe(1)
    expect(secondary.connections.length).toBe(2)
    const third = await runCli(['--cache-file', file, '--port', port, ...MXES])
    expect(third).toMatchObject({stdout: '127.0.0.2\n', status: 1})
    expect(primary.connections.length).toBe(1)
  })

  it('refused primary: the second run answers from the secondary with the primary cached', async () => {
    // Nothing listens on 127.0.0.1 at the secondary's port: the primary is refused.
    const secondary = await keep(startSmtp({host: '127.0.0.2', greet: (s) => void setTimeout(() => s.write('220 secondary\r\n'), 150)}))
    const file = join(freshDir(), 'cache.json')
    const args = ['--cache-file', file, '--port', String(secondary.port), '--json', ...MXES]
    const first = await runCli(args)
    expect(first.status).toBe(1)
    expect(outcomes(first.stdout)['127.0.0.1']).toEqual(['refused'])
    const second = await runCli(args)
    expect(second.status).toBe(1)
    expect(outcomes(second.stdout)).toMatchObject({'127.0.0.1': ['cached unavailable'], '127.0.0.2': ['available']})
  })

  it('blackholed primary with --timeout 1: the second run does not wait for it again', async () => {
    const hole = await keep(startBlackhole('127.0.0.1'))
    await keep(startSmtp({host: '127.0.0.2', port: hole.port, greeting: '220 secondary\r\n'}))
    const port = String(hole.port)

    // Only the primary is a candidate: the first run waits out the budget, the second exits 0 at once.
    const alone = ['--cache-file', join(freshDir(), 'cache.json'), '--timeout', '1', '--port', port, '--stop', '127.0.0.2', '10:127.0.0.1', '20:127.0.0.2']
    const first = await runCli(alone)
    expect(first).toMatchObject({stdout: '', status: 0})
    expect(first.ms).toBeGreaterThan(900)
    const second = await runCli([...alone, '--json'])
    expect(second.status).toBe(0)
    expect(outcomes(second.stdout)['127.0.0.1']).toEqual(['cached unavailable'])
    expect(second.ms).toBeLessThan(first.ms - 500)

    // With a live secondary answering first, the primary's attempt is cancelled, and a
    // cancelled attempt teaches nothing: the next run tries the primary again.
    const both = ['--cache-file', join(freshDir(), 'cache.json'), '--timeout', '1', '--port', port, '--json', ...MXES]
    for (let i = 0; i < 2; i++) {
      const r = await runCli(both)
      expect(r.status).toBe(1)
      expect(outcomes(r.stdout)['127.0.0.1']).toEqual(['cancelled'])
    }
    // --sequential gives the primary its whole budget: its timeout is learned.
    const learn = await runCli([...both, '--sequential'])
    expect(learn.status).toBe(1)
    expect(outcomes(learn.stdout)['127.0.0.1']).toEqual(['connect-timeout'])
    const again = await runCli(both)
    expect(again.status).toBe(1)
    expect(outcomes(again.stdout)).toMatchObject({'127.0.0.1': ['cached unavailable'], '127.0.0.2': ['available']})
  })
})

describe('TTLs and the cache flags', () => {
  it('an entry older than --negative-ttl is probed again; a longer TTL still skips it', async () => {
    const live = await keep(startSmtp({host: '127.0.0.1', greeting: '220 up\r\n'}))
    const file = join(freshDir(), 'cache.json')
    const planted = JSON.stringify({version: 1, entries: {[`127.0.0.1:${live.port}`]: {state: 'unavailable', seenAt: Date.now() - 61_000}}})
    const args = ['--cache-file', file, '--port', String(live.port), '127.0.0.1']
    writeFileSync(file, planted, {mode: 0o600})
    expect(await runCli(['--negative-ttl', '120', ...args])).toMatchObject({stdout: '', status: 0})
    expect(live.connections.length).toBe(0)
    writeFileSync(file, planted, {mode: 0o600})
    expect(await runCli(args)).toMatchObject({stdout: '127.0.0.1\n', status: 1}) // default 60 s: expired
    expect(live.connections.length).toBe(1)
  })

  it('--positive-ttl: the second run makes no connection and still prints the server', async () => {
    const live = await keep(startSmtp({host: '127.0.0.1', greeting: '220 up\r\n'}))
    const args = ['--cache-file', join(freshDir(), 'cache.json'), '--port', String(live.port), '127.0.0.1']
    expect(await runCli(['--positive-ttl', '60', ...args])).toMatchObject({stdout: '127.0.0.1\n', status: 1})
    expect(await runCli(['--positive-ttl', '60', ...args])).toMatchObject({stdout: '127.0.0.1\n', status: 1})
    expect(live.connections.length).toBe(1)
    expect(await runCli(args)).toMatchObject({stdout: '127.0.0.1\n', status: 1}) // default 0: probed
    expect(live.connections.length).toBe(2)
  })

  it('--no-cache probes every time and writes nothing', async () => {
    const {primary, port} = await deadPrimaryLiveSecondary()
    const xdg = freshDir()
    const env = {...process.env, XDG_CACHE_HOME: xdg}
    for (let i = 1; i <= 2; i++) {
      expect(await runCli(['--no-cache', '--port', port, ...MXES], {env})).toMatchObject({stdout: '127.0.0.2\n', status: 1})
      expect(primary.connections.length).toBe(i)
    }
    expect(readdirSync(xdg)).toEqual([])
  })

  it('default path: $XDG_CACHE_HOME/smtpdcheck/cache.json (directory 0700, file 0600), else ~/.cache', async () => {
    const {primary, port} = await deadPrimaryLiveSecondary()
    const xdg = join(freshDir(), 'xdg')
    const home = freshDir()
    const {XDG_CACHE_HOME: _, ...withoutXdg} = process.env
    const runs: Array<[NodeJS.ProcessEnv, string]> = [
      [{...process.env, XDG_CACHE_HOME: xdg, HOME: home}, join(xdg, 'smtpdcheck')],
      [{...withoutXdg, HOME: home}, join(home, '.cache', 'smtpdcheck')],
    ]
    for (const [env, dir] of runs) {
      expect(await runCli(['--port', port, ...MXES], {env})).toMatchObject({stdout: '127.0.0.2\n', status: 1})
      expect(statSync(dir).mode & 0o777).toBe(0o700)
      expect(statSync(join(dir, 'cache.json')).mode & 0o777).toBe(0o600)
      const entries = parseCache(readFileSync(join(dir, 'cache.json'), 'utf8'))
      expect(entries).toBeInstanceOf(Map)
      expect((entries as Map<string, {state: string}>).get(`127.0.0.1:${port}`)?.state).toBe('unavailable')
    }
    expect(primary.connections.length).toBe(2) // one per cache file
  })

  it('--cache-file PATH is the one used', async () => {
    const {port} = await deadPrimaryLiveSecondary()
    const xdg = freshDir()
    const file = join(freshDir(), 'my', 'cache')
    const r = await runCli(['--cache-file', file, '--port', port, ...MXES], {env: {...process.env, XDG_CACHE_HOME: xdg}})
    expect(r).toMatchObject({stdout: '127.0.0.2\n', status: 1})
    expect(existsSync(file)).toBe(true)
    expect(readdirSync(xdg)).toEqual([])
    expect(await runCli(['--cache-file', '', '127.0.0.1'])).toMatchObject({stdout: '', stderr: 'smtpdcheck: --cache-file must not be empty\n', status: 2})
  })
})

describe('50 concurrent runs share one cache file', () => {
  it('every run exits 1 printing the secondary; the file parses afterwards; no temp file is left', async () => {
    const {port} = await deadPrimaryLiveSecondary()
    const dir = freshDir()
    const file = join(dir, 'cache.json')
    const runs = await Promise.all(Array.from({length: 50}, () => runCli(['--cache-file', file, '--port', port, ...MXES], {limitMs: 60_000})))
    for (const r of runs) expect(r).toMatchObject({stdout: '127.0.0.2\n', stderr: '', status: 1})
    const entries = parseCache(readFileSync(file, 'utf8'))
    expect((entries as Map<string, {state: string}>).get(`127.0.0.1:${port}`)?.state).toBe('unavailable')
    expect(readdirSync(dir)).toEqual(['cache.json'])
  }, 90_000)
})

describe('a cache file that is not to be trusted, or cannot be written, never changes the answer', () => {
  /** A document that, if believed, would make the live server at `port` look unavailable. */
  const poisoned = (port: number) => JSON.stringify({version: 1, entries: {[`127.0.0.1:${port}`]: {state: 'unavailable', seenAt: Date.now()}}})
  const variants: Array<[string, (path: string, port: number) => void, RegExp]> = [
    ['garbage', (p) => writeFileSync(p, 'garbage\u0000\u00ff', {mode: 0o600}), /corrupt \(not JSON\)/],
    ['truncated JSON', (p, port) => writeFileSync(p, poisoned(port).slice(0, -3), {mode: 0o600}), /corrupt \(not JSON\)/],
    ['wrong types', (p, port) => writeFileSync(p, poisoned(port).replace(/"seenAt":(\d+)/, '"seenAt":"$1"'), {mode: 0o600}), /corrupt \(bad entry/],
    ['huge', (p, port) => writeFileSync(p, poisoned(port).replace('{', `{"pad":"${' '.repeat(MAX_FILE_BYTES)}",`), {mode: 0o600}), /larger than/],
    ['world-writable', (p, port) => { writeFileSync(p, poisoned(port)); chmodSync(p, 0o606) }, /writable by group or others \(mode 606\)/],
    ['group-writable', (p, port) => { writeFileSync(p, poisoned(port)); chmodSync(p, 0o660) }, /writable by group or others \(mode 660\)/],
    ['foreign-owned', (p, port) => { writeFileSync(p, poisoned(port), {mode: 0o600}); chownSync(p, process.getuid!() + 1, process.getgid!()) }, /owned by uid \d+, not \d+/],
  ]
  it.each(variants)('%s: the live server is still probed and printed; --verbose says why', async (_name, make, why) => {
    const live = await keep(startSmtp({host: '127.0.0.1', greeting: '220 up\r\n'}))
    const file = join(freshDir(), 'cache.json')
    make(file, live.port)
    const quiet = await runCli(['--cache-file', file, '--port', String(live.port), '127.0.0.1'])
    expect(quiet).toMatchObject({stdout: '127.0.0.1\n', stderr: '', status: 1})
    const again = join(freshDir(), 'cache.json') // the first run may have replaced a corrupt file
    make(again, live.port)
    const verbose = await runCli(['--verbose', '--cache-file', again, '--port', String(live.port), '127.0.0.1'])
    expect(verbose).toMatchObject({stdout: '127.0.0.1\n', status: 1})
    expect(verbose.stderr).toMatch(new RegExp(`^\\+ *\\d+ms cache: ignored ${again}: ${why.source}`, 'm'))
    expect(live.connections.length).toBe(2)
  })

  it('control: the same poisoned file, ours and 0600, is believed (the tests above can fail)', async () => {
    const live = await keep(startSmtp({host: '127.0.0.1', greeting: '220 up\r\n'}))
    const file = join(freshDir(), 'cache.json')
    writeFileSync(file, poisoned(live.port), {mode: 0o600})
    expect(await runCli(['--cache-file', file, '--port', String(live.port), '127.0.0.1'])).toMatchObject({stdout: '', status: 0})
    expect(live.connections.length).toBe(0)
  })

  it('unusable: the cache path lies under a regular file: the cache is off, said once', async () => {
    const {primary, port} = await deadPrimaryLiveSecondary()
    const plain = join(freshDir(), 'plain')
    writeFileSync(plain, '')
    const args = ['--cache-file', join(plain, 'cache.json'), '--port', port, ...MXES]
    expect(await runCli(args)).toMatchObject({stdout: '127.0.0.2\n', stderr: '', status: 1})
    const verbose = await runCli(['--verbose', ...args])
    expect(verbose).toMatchObject({stdout: '127.0.0.2\n', status: 1})
    expect(verbose.stderr.match(/cache: .*$/gm)).toEqual([`cache: off: ${plain} is not a directory`])
    expect(primary.connections.length).toBe(2)
  })

  it('unwritable: an immutable directory (chattr +i: EPERM even for root)', async (ctx) => {
    const {port} = await deadPrimaryLiveSecondary()
    const dir = freshDir()
    try {
      await promisify(execFile)('chattr', ['+i', dir])
    } catch {
      return ctx.skip('chattr +i is not available here')
    }
    try {
      const r = await runCli(['--verbose', '--cache-file', join(dir, 'cache.json'), '--port', port, ...MXES])
      expect(r).toMatchObject({stdout: '127.0.0.2\n', status: 1})
      expect(r.stderr).toMatch(/ms cache: not written to .*: EPERM$/m)
    } finally {
      await promisify(execFile)('chattr', ['-i', dir])
    }
  })
})
