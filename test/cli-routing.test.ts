// How a command line is routed (bin/run.js): a first word exactly `autocomplete` goes to
// our own completion (src/cli/completion.ts; test/completion.test.ts runs it in bash), anything else is the default command; that command runs from
// the fast bundle unless the line needs oclif itself, and both parse it alike.
import {Parser} from '@oclif/core'
import fc from 'fast-check'
import {execFile} from 'node:child_process'
import {mkdtempSync, writeFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'
import {describe, expect, it} from 'vitest'

import Check from '../src/commands/check.js'
import {runCli} from './cli.js'

const bundle = createRequire(import.meta.url)('../dist/smtpdcheck.cjs') as {
  parseCommandLine: (argv: readonly string[]) => {kind: 'check'; flags: Record<string, unknown>; words: string[]} | {kind: 'oclif'}
}

const exec = promisify(execFile)

describe('autocomplete routing (SPEC §2)', () => {
  it('`autocomplete bash` prints the setup instructions', async () => {
    const r = await runCli(['autocomplete', 'bash'])
    expect(r).toMatchObject({status: 0, stderr: ''})
    expect(r.stdout).toContain('smtpdcheck autocomplete script bash')
  })

  it('`autocomplete script bash` prints the completion script', async () => {
    const r = await runCli(['autocomplete', 'script', 'bash'])
    expect(r.status).toBe(0)
    expect(r.stdout).toContain('complete -F _smtpdcheck_autocomplete smtpdcheck')
  })

  it('`autocomplete --help` is its help on stdout, exit 0', async () => {
    const r = await runCli(['autocomplete', '--help'])
    expect(r).toMatchObject({status: 0, stderr: ''})
    expect(r.stdout).toContain('$ smtpdcheck autocomplete [SHELL]')
  })

  it('a bad shell is one line `smtpdcheck: …`, exit 2', async () => {
    const r = await runCli(['autocomplete', 'fish'])
    expect(r).toEqual(expect.objectContaining({stdout: '', status: 2}))
    expect(r.stderr).toMatch(/^smtpdcheck: [^\n]*fish[^\n]*\n$/)
  })

  // The default command answers: a bad word after it is its own usage error. (A live probe of
  // such names is in e2e.test.ts.)
  it.each([[['autocomplete.']], [['--', 'autocomplete']], [['-v', 'autocomplete']], [['10:autocomplete']]])(
    '%j is a server word, not the subcommand',
    async (words) => {
      const r = await runCli([...words, '10:127.1'])
      expect(r).toEqual({stdout: '', stderr: expect.stringMatching(/^smtpdcheck: bad server "10:127\.1"/), status: 2, ms: expect.any(Number)})
    },
  )
})

describe('fast path (src/cli/argv.ts, node:util parseArgs) and oclif parse alike', () => {
  /** Our parse, or the reason it refuses the line. */
  const fastParse = (argv: string[]) => {
    try {
      return bundle.parseCommandLine(argv)
    } catch (error) {
      return {kind: 'error' as const, message: (error as Error).message}
    }
  }
  /** oclif's parse with the command's own flags: flags given and the server words in the order typed. */
  const oclifParse = async (argv: string[]) => {
    const {flags, raw, nonExistentFlags} = await Parser.parse(argv, {flags: Check.flags, args: {}, strict: false})
    const words = raw.flatMap((token) => (token.type === 'arg' ? [token.input] : []))
    return {flags, words, nonExistentFlags}
  }

  const ORDINARY = [
    ['--stop', '127.0.0.1', '10:127.0.0.1'],
    ['--stop=192.0.2.1', '--timeout', '5', '10:a.example', '20:b.example'],
    ['-4', '-v', '--no-cache', '--port', '2525', 'mx.example.'],
    ['--json', '--sequential', '--attempt-delay', '100', '--cache-file', '/tmp/c', 'a', '--', '-b'],
    ['--dns-server', '127.0.0.1:53', '--negative-ttl', '30', '--positive-ttl=10', '--cache', '[::1]', '::1'],
    ['--stop', '127.0.0.2', '127.0.0.1', '127.0.0.2'],
  ]

  it.each(ORDINARY)('takes the ordinary command line %j as oclif does', async (...argv) => {
    const fast = fastParse(argv)
    expect(fast.kind).toBe('check')
    const oclif = await oclifParse(argv)
    expect(fast).toEqual({kind: 'check', flags: oclif.flags, words: oclif.words})
  })

  it.each([['--help'], ['-h'], ['--version'], ['a', '--help'], ['-vh']])('leaves %j to oclif', (...argv) => {
    expect(fastParse(argv)).toEqual({kind: 'oclif'})
  })

  it('whatever both take, they parse to the same flags and the same words in the same order', async () => {
    const words = ['--stop', '--timeout', '--port', '--cache-file', '--dns-server', '-4', '-6', '--ipv4', '--ipv6', '-v', '--verbose', '--sequential', '--cache', '--no-cache', '--json', '--', '-', '--stop=a', '--stop=', '-4v', '', 'a', 'b', '10:a', '1', '14:a', '64.1.2.3', '2600::1', 'sh1.', 'hv6']
    let both = 0
    let valueEqualWord = 0
    await fc.assert(
      fc.asyncProperty(fc.array(fc.constantFrom(...words), {maxLength: 8}), async (argv) => {
        const fast = fastParse(argv)
        if (fast.kind !== 'check') return
        const oclif = await oclifParse(argv).catch(() => undefined)
        if (oclif === undefined || oclif.nonExistentFlags.length > 0) return
        both++
        if (Object.values(fast.flags).some((value) => fast.words.includes(value as string))) valueEqualWord++
        expect(fast).toEqual({kind: 'check', flags: oclif.flags, words: oclif.words})
      }),
      {numRuns: 1000},
    )
    expect(both).toBeGreaterThan(100)
    expect(valueEqualWord).toBeGreaterThan(0)
  })
})

describe('what a run loads', () => {
  // A preload that reports, at exit, whether any @oclif module was loaded.
  const preload = join(mkdtempSync(join(tmpdir(), 'smtpdcheck-routing-')), 'report-oclif.cjs')
  writeFileSync(preload, `process.on('exit', () => process.stderr.write('oclif loaded: ' + Object.keys(require.cache).some((f) => f.includes('@oclif')) + '\\n'))\n`)
  const env = {...process.env, NODE_OPTIONS: `--require ${preload}`}

  it('the ordinary command does not load oclif', async () => {
    const r = await runCli(['--stop', '127.0.0.1', '10:127.0.0.1'], {env})
    expect(r).toMatchObject({status: 0, stdout: '', stderr: 'oclif loaded: false\n'})
  })

  it('--help does, and prints the examples of SPEC §8 and the Mail Avenger recipe', async () => {
    const r = await runCli(['--help'], {env})
    expect(r).toMatchObject({status: 0, stderr: 'oclif loaded: true\n'})
    expect(r.stdout).toContain('$ smtpdcheck --stop s2.domain.com 10:s1.domain.com 10:s2.domain.com')
    expect(r.stdout).toContain('$ smtpdcheck --stop s2.domain.com 10:s1.domain.com 20:s2.domain.com')
    expect(r.stdout).toContain('server=`smtpdcheck --stop $MYIP $RECIP_MXES`')
  })

  it('an unknown flag is answered by the fast path: one line, exit 2, oclif not loaded', async () => {
    const r = await runCli(['--bogus', '10:a'], {env})
    expect(r).toEqual({stdout: '', stderr: 'smtpdcheck: unknown option "--bogus" (see smtpdcheck --help)\noclif loaded: false\n', status: 2, ms: expect.any(Number)})
  })
})
