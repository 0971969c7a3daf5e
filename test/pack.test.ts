// Installed like a real CLI, by the README's "Install" lines run word for word in a copy of
// the checkout (`npm ci && npm run build`, `npm pack && npm install -g ./smtpdcheck-….tgz`,
// npm from the registry with whatever cache it is given, -g into a temporary prefix): `smtpdcheck` on PATH (fast path, oclif path,
// autocomplete) and its manual page under share/man.
import {execFile} from 'node:child_process'
import {existsSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {promisify} from 'node:util'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {installFromReadme} from '../fixtures/install.js'
import {startSmtp} from '../fixtures/smtp.js'

const ROOT = new URL('..', import.meta.url).pathname
const exec = promisify(execFile)
let installed: Awaited<ReturnType<typeof installFromReadme>>
let prefix: string
let env: NodeJS.ProcessEnv

/** Run the installed `smtpdcheck` (found on PATH) asynchronously; bounded. */
async function smtpdcheck(args: string[]): Promise<{stdout: string; stderr: string; status: number}> {
  try {
    const {stdout, stderr} = await exec('smtpdcheck', args, {env, timeout: 15_000, encoding: 'utf8'})
    return {stdout, stderr, status: 0}
  } catch (error) {
    const e = error as {stdout?: string; stderr?: string; code?: number | string}
    if (typeof e.code !== 'number') throw error
    return {stdout: e.stdout ?? '', stderr: e.stderr ?? '', status: e.code}
  }
}

beforeAll(async () => {
  // The README's Install lines, word for word, in a copy of the checkout (fixtures/install.js).
  installed = await installFromReadme()
  prefix = installed.prefix
  env = {...installed.env, npm_config_prefix: undefined, npm_config_offline: undefined}
}, 300_000)

// The installed tree (npm ci's node_modules, the devDependencies' Haraka included) is large: its
// removal may take more than the default 20 s under a loaded full run.
afterAll(() => installed?.remove(), 120_000)

describe('npm pack → npm install -g --prefix TMP', () => {
  it('puts smtpdcheck on PATH: --version', async () => {
    const r = await smtpdcheck(['--version'])
    const {version} = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {version: string}
    expect(r).toMatchObject({status: 0, stderr: ''})
    expect(r.stdout).toMatch(new RegExp(`^smtpdcheck/${version.replaceAll('.', '\\.')} `))
  })

  it('probes a live loopback server', async () => {
    const smtp = await startSmtp({greeting: '220 installed ESMTP\r\n'})
    try {
      const r = await smtpdcheck(['--port', String(smtp.port), '--stop', '127.0.0.2', '10:127.0.0.1', '20:127.0.0.2'])
      expect(r).toEqual({stdout: '127.0.0.1\n', stderr: '', status: 1})
      expect(smtp.connections).toHaveLength(1)
    } finally {
      await smtp.close()
    }
  })

  it('runs oclif from the installed tree: --help, a bad flag, autocomplete', async () => {
    expect(await smtpdcheck(['--help'])).toMatchObject({status: 0, stdout: expect.stringContaining('$ smtpdcheck --stop s2.domain.com')})
    expect(await smtpdcheck(['--bogus', 'a'])).toEqual({stdout: '', stderr: 'smtpdcheck: unknown option "--bogus" (see smtpdcheck --help)\n', status: 2})
    expect(await smtpdcheck(['autocomplete', 'script', 'bash'])).toMatchObject({status: 0, stdout: expect.stringContaining('complete -F _smtpdcheck_autocomplete smtpdcheck')})
  })

  it('installs the manual page where man finds it (share/man/man1)', async () => {
    const page = join(prefix, 'share', 'man', 'man1', 'smtpdcheck.1')
    expect(existsSync(page)).toBe(true)
    expect(readFileSync(page, 'utf8')).toBe(readFileSync(join(ROOT, 'man', 'smtpdcheck.1'), 'utf8'))
    const man = await exec('man', ['-w', 'smtpdcheck'], {env: {...env, MANPATH: join(prefix, 'share', 'man')}}).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined // no man(1) on this machine: the file check above stands
      throw error
    })
    if (man) expect(man.stdout.trim()).toMatch(/smtpdcheck\.1(\.gz)?$/)
  })

  it('ships every file the README links (the README stands on its own)', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
    const links = [...readme.matchAll(/\]\(([^)#:\s]+)\)/g)].map((m) => m[1])
    expect(links.length).toBeGreaterThan(3)
    const installed = join(prefix, 'lib', 'node_modules', 'smtpdcheck')
    for (const link of new Set(links)) {
      expect(existsSync(join(ROOT, link)), `${link} in the repository`).toBe(true)
      expect(existsSync(join(installed, link)), `${link} in the package`).toBe(true)
    }
  })
})
