// The system resolver (SPEC §7, issue 10 defect 3): /etc/hosts, then the name servers of
// /etc/resolv.conf through c-ares, never getaddrinfo's four shared threads. Through the
// built binary inside a private mount namespace whose /etc/resolv.conf names a loopback DNS
// fixture (127.0.11.53:53) and whose /etc/hosts is the test's own: this host's real
// resolver is never asked.
import {execFileSync} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir, userInfo} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {startDns} from '../fixtures/dns.js'
import {runTimed} from '../fixtures/spawn.js'
import {startSmtp} from '../fixtures/smtp.js'
import {BIN} from './cli.js'

const RESOLVER = '127.0.11.53'
const PRIMARY = '127.0.11.1'

function cannotRun(): string | undefined {
  if (userInfo().uid !== 0) return 'needs root for a private mount namespace'
  try {
    execFileSync('unshare', ['--mount', 'true'], {stdio: 'ignore'})
  } catch {
    return 'no private mount namespace here (unshare --mount failed: needs CAP_SYS_ADMIN)'
  }
  return undefined
}
const skip = cannotRun()
if (skip) console.warn(`system-resolver skipped: ${skip}`)

describe.skipIf(skip !== undefined)(`the system resolver in a private mount namespace${skip ? ` (skipped: ${skip})` : ''}`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'smtpdcheck-sysres-'))
  const hung = [1, 2, 3, 4, 5, 6].map((i) => `hung${i}.test`)
  let dns: Awaited<ReturnType<typeof startDns>>
  let primary: Awaited<ReturnType<typeof startSmtp>>
  beforeAll(async () => {
    const zone: Record<string, {A?: string[]; silent?: boolean}> = {'mx1.test': {A: [PRIMARY]}, 'mx2.test': {A: ['127.0.11.2']}}
    for (const name of hung) zone[name] = {silent: true}
    dns = await startDns(zone, {host: RESOLVER, port: 53})
    primary = await startSmtp({host: PRIMARY, greeting: '220 primary.test ESMTP\r\n'})
    writeFileSync(join(dir, 'resolv.conf'), `nameserver ${RESOLVER}\noptions timeout:5 attempts:2\n`)
    writeFileSync(join(dir, 'hosts'), `127.0.0.1 localhost\n# a comment\n${PRIMARY} Primary.Hosts.Test primary-alias # trailing\n`)
  })
  afterAll(async () => {
    await dns?.close()
    await primary?.close()
    rmSync(dir, {recursive: true, force: true})
  })

  /** The binary with this test's resolv.conf (or `resolvConf`) and hosts bind-mounted over the system's. */
  const runIsolated = (args: string[], resolvConf = join(dir, 'resolv.conf')) =>
    runTimed(
      ['--mount', 'sh', '-c', 'mount --bind "$1" /etc/resolv.conf && mount --bind "$2" /etc/hosts && shift 2 && exec "$@"', 'sh',
        resolvConf, join(dir, 'hosts'), process.execPath, BIN, '--no-cache', '--port', String(primary.port), ...args],
      {command: 'unshare', limitMs: 30_000},
    )

  it('six hung names of lower preference neither delay the --stop lookup, the primary, nor the exit', async () => {
    const run = await runIsolated(['--timeout', '20', '--stop', 'mx2.test', '10:mx1.test', '20:mx2.test', ...hung.map((h) => `30:${h}`)])
    expect([run.stdout, run.stderr, run.status]).toEqual(['mx1.test\n', '', 1])
    expect(run.ms).toBeLessThan(3000) // the hung names' budget is 20 s
    expect(dns.queries.some((q) => q.name === 'mx2.test')).toBe(true) // the stop name came through the fixture
  }, 40_000)

  it('six hung candidates do not delay a healthy /etc/hosts name, nor the exit once it answered', async () => {
    const run = await runIsolated(['--timeout', '20', ...hung, 'PRIMARY.hosts.test.'])
    expect([run.stdout, run.stderr, run.status]).toEqual(['PRIMARY.hosts.test.\n', '', 1])
    expect(run.ms).toBeLessThan(3000)
    expect(dns.queries.some((q) => q.name.includes('hosts.test'))).toBe(false) // /etc/hosts answered it
  }, 40_000)

  it('resolv.conf: a silent first name server is asked once (timeout:1 attempts:1), then the second answers', async () => {
    const silent = await startDns({'mx1.test': {silent: true}, 'mx2.test': {silent: true}}, {host: '127.0.11.54', port: 53})
    try {
      const conf = join(dir, 'two.conf')
      writeFileSync(conf, `# two servers\nnameserver 127.0.11.54\nnameserver ${RESOLVER} ; the live one\noptions timeout:1 attempts:1\n`)
      const run = await runIsolated(['--timeout', '10', '--stop', 'mx2.test', '10:mx1.test', '20:mx2.test'], conf)
      expect([run.stdout, run.stderr, run.status]).toEqual(['mx1.test\n', '', 1])
      expect(run.ms).toBeGreaterThanOrEqual(900) // the first server's one try
      expect(run.ms).toBeLessThan(5000)
      expect(silent.queries.filter((q) => q.name === 'mx1.test' && q.type === 'A')).toHaveLength(1)
    } finally {
      await silent.close()
    }
  }, 40_000)

  it('an /etc/hosts name as --stop; localhost keeps working', async () => {
    const run = await runIsolated(['--json', '--stop', 'primary-alias', '10:localhost', '20:primary-alias'])
    const report = JSON.parse(run.stdout)
    expect(run.status).toBe(0) // localhost:port is closed; primary-alias is the local host
    expect(JSON.stringify(report)).toContain('127.0.0.1')
  })
})
