// Issue 19, items 6 and 7: what the command says about itself. `serve --help` is a usage
// line one can follow and examples that are whole; a lone `help` or `version` that is no
// host says "did you mean --help?"; --version and --help that cannot be written exit 2
// with one line, as an answer that cannot be written does (SPEC §6).
import {closeSync, openSync} from 'node:fs'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {startDns} from '../fixtures/dns.js'
import {startTimed} from '../fixtures/spawn.js'
import {startSmtp} from '../fixtures/smtp.js'
import Serve from '../src/commands/serve.js'
import {BIN, runCli} from './cli.js'

describe('smtpdcheck serve --help', () => {
  it.each([60, 80, 120, 200])('at %i columns: a usage line that runs serve, and every example whole', async (columns) => {
    const r = await runCli(['serve', '--help'], {env: {...process.env, COLUMNS: String(columns)}})
    expect(r).toMatchObject({status: 0, stderr: ''})
    const usage = r.stdout.slice(r.stdout.indexOf('USAGE'), r.stdout.indexOf('FLAGS'))
    expect(usage).toMatch(/^\s+\$ smtpdcheck serve --listen /m)
    // An example may wrap at a space (a shell continuation), never inside a word.
    const flat = r.stdout.replace(/ \\\n\s+/g, ' ').replace(/\s+/g, ' ')
    for (const {command} of Serve.examples as Array<{command: string}>) expect(flat, command).toContain(command)
  })

  it('its Exim example is a recipe that sets the message (smtpdcheck --print-recipe exim-serve)', async () => {
    const help = await runCli(['serve', '--help'])
    expect(help.stdout).toContain('$ smtpdcheck --print-recipe exim-serve')
    const recipe = await runCli(['--print-recipe', 'exim-serve'])
    expect(recipe).toMatchObject({status: 0, stderr: ''})
    expect(recipe.stdout).toMatch(/^\s+message\s+= \$\{sg\{\$acl_m_policy\}/m)
    expect(recipe.stdout).toContain('${readsocket{inet:127.0.0.1:10040}')
  })
})

describe('a lone server word "help" or "version"', () => {
  let dns: Awaited<ReturnType<typeof startDns>>
  let empty: Awaited<ReturnType<typeof startDns>>
  let smtp: Awaited<ReturnType<typeof startSmtp>>
  beforeAll(async () => {
    smtp = await startSmtp({host: '127.30.19.1', greeting: '220 help ESMTP\r\n'})
    // Here `version` resolves to a live server and `help` is NXDOMAIN; `empty` knows no name.
    dns = await startDns({version: {A: ['127.30.19.1']}}, {host: '127.30.19.53'})
    empty = await startDns({}, {host: '127.30.19.54'})
  })
  afterAll(async () => {
    await smtp?.close()
    await dns?.close()
    await empty?.close()
  })
  const args = () => ['--no-cache', '--dns-server', dns.address, '--port', String(smtp.port)]

  it.each(['help', 'version'])('%s that does not resolve: exit 2, "did you mean --help/--version?"', async (word) => {
    const r = await runCli(['--no-cache', '--dns-server', empty.address, '--port', String(smtp.port), word])
    expect(r).toEqual(expect.objectContaining({stdout: '', status: 2}))
    expect(r.stderr).toBe(`smtpdcheck: no host "${word}" (did you mean --${word}?)\n`)
  })

  it('a host really named so is probed as any other (version → 127.30.19.1 greets: exit 1)', async () => {
    expect(await runCli([...args(), 'version'])).toMatchObject({stdout: 'version\n', status: 1, stderr: ''})
  })

  it('not lone, or with a priority, or after --: no hint, the list is judged as it is', async () => {
    for (const words of [['help', 'nothing.test'], ['10:help'], ['--', 'help.']]) {
      expect(await runCli([...args(), ...words]), words.join(' ')).toMatchObject({stdout: '', stderr: '', status: 0})
    }
  })
})

describe('--version and --help that cannot be written', () => {
  it.each([['--version'], ['--help'], ['serve', '--version'], ['serve', '--help']].map((argv) => [argv.join(' '), argv] as const))('%s > /dev/full: exit 2, one line', async (_, argv) => {
    const full = openSync('/dev/full', 'w')
    try {
      const r = await startTimed([BIN, ...argv], {limitMs: 15_000, stdio: ['ignore', full, 'pipe']}).done
      expect(r.status).toBe(2)
      expect(r.stderr).toMatch(/^smtpdcheck: system error: cannot write to standard output: [^\n]*ENOSPC[^\n]*\n$/)
    } finally {
      closeSync(full)
    }
  })

  it('--version into a closed pipe: exit 2, one line naming EPIPE', async () => {
    const {child, done} = startTimed([BIN, '--version'], {limitMs: 15_000})
    child.stdout!.destroy()
    const r = await done
    expect(r.status).toBe(2)
    expect(r.stderr).toMatch(/^smtpdcheck: system error: cannot write to standard output: [^\n]*EPIPE[^\n]*\n$/)
  })

  it('written: exit 0, the version on stdout', async () => {
    expect(await runCli(['--version'])).toMatchObject({status: 0, stderr: '', stdout: expect.stringMatching(/^smtpdcheck\/\d+\.\d+\.\d+ /)})
  })
})
