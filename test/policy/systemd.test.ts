// contrib/smtpdcheck.service: `systemd-analyze verify` accepts it (when systemd-analyze is
// present). ExecStart names `smtpdcheck` without a directory (systemd finds it on its PATH,
// wherever npm installed it: issue 19). verify insists that ExecStart's binary exists, so
// this test verifies a copy whose ExecStart names this checkout's bin/run.js; everything
// else is the shipped text. The shipped text itself, with the package installed under /usr
// and /usr/local, is verified in test/install-prefixes.test.ts.
import {execFile} from 'node:child_process'
import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'
import {describe, expect, it} from 'vitest'

import {parseListen} from '../../src/policy/listen.js'
import {BIN} from '../cli.js'

const UNIT = readFileSync(new URL('../../contrib/smtpdcheck.service', import.meta.url), 'utf8')
const INSTALLED = 'smtpdcheck'
const run = promisify(execFile)

async function hasAnalyze(): Promise<boolean> {
  return run('systemd-analyze', ['--version']).then(() => true, () => false)
}

/** Verify `text` as smtpdcheck.service, ExecStart pointed at this checkout: systemd's complaints. */
async function verify(text: string): Promise<{ok: boolean; stderr: string}> {
  const dir = mkdtempSync(join(tmpdir(), 'smtpdcheck-unit-'))
  const file = join(dir, 'smtpdcheck.service')
  writeFileSync(file, text.replaceAll(`ExecStart=${INSTALLED} `, `ExecStart=${BIN} `))
  return run('systemd-analyze', ['verify', '--man=no', file]).then(
    ({stderr}) => ({ok: stderr.trim() === '', stderr}),
    (error: {stderr: string}) => ({ok: false, stderr: error.stderr}),
  )
}

const directive = (name: string) => UNIT.match(new RegExp(`^${name}=(.*)$`, 'm'))?.[1]

describe('contrib/smtpdcheck.service', () => {
  it('runs serve on inet 127.0.0.1:10040 and a unix socket in its RuntimeDirectory, cache in its CacheDirectory', () => {
    const exec = directive('ExecStart')!.split(' ')
    expect(exec.slice(0, 2)).toEqual([INSTALLED, 'serve'])
    const listens = exec.flatMap((word, i) => (exec[i - 1] === '--listen' ? [parseListen(word)] : []))
    expect(listens).toEqual([{kind: 'inet', host: '127.0.0.1', port: 10040}, {kind: 'unix', path: '/run/smtpdcheck/policy'}])
    expect(directive('RuntimeDirectory')).toBe('smtpdcheck')
    expect(directive('CacheDirectory')).toBe('smtpdcheck')
    expect(exec[exec.indexOf('--cache-file') + 1]).toMatch(/^\/var\/cache\/smtpdcheck\//)
  })

  it.each([
    // Its own user, not DynamicUser= (which would make the CacheDirectory a symbolic link,
    // and a linked cache directory is refused: issue 14), and a cache directory of mode 0700.
    ['User', 'smtpdcheck'],
    ['DynamicUser', undefined],
    ['CacheDirectoryMode', '0700'],
    ['Restart', 'on-failure'],
    ['NoNewPrivileges', 'yes'],
    ['ProtectSystem', 'strict'],
    ['ProtectHome', 'yes'],
    ['PrivateTmp', 'yes'],
    ['RestrictAddressFamilies', 'AF_INET AF_INET6 AF_UNIX'],
  ])('%s=%s', (name, value) => expect(directive(name)).toBe(value))

  it('passes systemd-analyze verify', async (context) => {
    if (!(await hasAnalyze())) return context.skip()
    expect(await verify(UNIT)).toEqual({ok: true, stderr: ''})
  })

  it('verify does catch a broken unit (the check can fail)', async (context) => {
    if (!(await hasAnalyze())) return context.skip()
    expect((await verify(UNIT.replace('Type=exec', 'Type=bogus'))).ok).toBe(false)
    expect((await verify(UNIT.replace(`ExecStart=${INSTALLED}`, 'ExecStart=/nonexistent/smtpdcheck'))).ok).toBe(false)
  })
})
