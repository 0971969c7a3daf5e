// Issue 15, completion and help: the bash completion is sourced into a real bash and called
// as bash calls it on TAB (COMP_WORDS, COMP_CWORD, COMP_LINE, COMP_POINT); what it offers is
// read from COMPREPLY and compared with a table written from SPEC §2; stderr stays empty.
import fc from 'fast-check'
import {execFile} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'
import {beforeAll, describe, expect, it} from 'vitest'

import {runCli} from './cli.js'

const exec = promisify(execFile)
/** zsh, where installed (.ci/run installs it). */
const ZSH = ['/usr/bin/zsh', '/bin/zsh'].find((path) => existsSync(path))

/** Long options a user can type (SPEC §2, §10 and the extensions), and which take a value. */
const LONG = ['--stop', '--timeout', '--port', '--attempt-delay', '--mx', '--dns-server', '--ipv4', '--ipv6', '--sequential', '--negative-ttl',
  '--positive-ttl', '--cache-file', '--cache', '--no-cache', '--verbose', '--json', '--print-recipe', '--help', '--version']
const VALUED = ['--stop', '--timeout', '--port', '--attempt-delay', '--mx', '--dns-server', '--negative-ttl', '--positive-ttl', '--cache-file', '--print-recipe']
/** `--print-recipe`'s values (issue 19: the MTA recipes of the README and the man page). */
const RECIPES = ['exim', 'exim-serve', 'postfix', 'avenger', 'systemd']
/** First words that are subcommands (SPEC §2): `serve` only once bin/run.js routes it. */
const SUBCOMMANDS = ['autocomplete', 'serve']

let script: string
let files: string

beforeAll(async () => {
  const r = await runCli(['autocomplete', 'script', 'bash'])
  expect(r).toMatchObject({status: 0, stderr: ''})
  script = join(mkdtempSync(join(tmpdir(), 'ux-completion-')), 'smtpdcheck.bash')
  writeFileSync(script, r.stdout)
  files = mkdtempSync(join(tmpdir(), 'ux-completion-files-'))
  for (const name of ['cache.json', 'cached.json', 'other.txt']) writeFileSync(join(files, name), '')
  mkdirSync(join(files, 'cachedir'))
})

/** Press TAB after `words` (the last one is the word under the cursor): COMPREPLY and stderr. */
async function tab(words: readonly string[]): Promise<{reply: string[]; stderr: string}> {
  const program = 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; ' +
    '_smtpdcheck_autocomplete; printf "%s\\n" "${COMPREPLY[@]}"'
  const {stdout, stderr} = await exec('bash', ['--norc', '--noprofile', '-c', program, 'bash', script, ...words], {encoding: 'utf8'})
  return {reply: stdout.split('\n').filter((line) => line !== '').sort(), stderr}
}

const starting = (list: readonly string[], prefix: string) => list.filter((w) => w.startsWith(prefix)).sort()

describe('bash completion through a real bash', () => {
  it('binds the function to smtpdcheck', async () => {
    const {stdout} = await exec('bash', ['--norc', '-c', 'source "$1"; complete -p smtpdcheck', 'bash', script], {encoding: 'utf8'})
    expect(stdout).toBe('complete -F _smtpdcheck_autocomplete smtpdcheck\n')
  })

  it.each([
    [['smtpdcheck', '10:mx1.example.org', '--ti'], ['--timeout']],
    [['smtpdcheck', '-v', '--'], [...LONG].sort()],
    [['smtpdcheck', '--stop', 'mx2.example.org', '--ti'], ['--timeout']],
    [['smtpdcheck', '--stop', ''], []],
    [['smtpdcheck', '--', '--ti'], []],
    [['smtpdcheck', '10:mx1.example.org', ''], []],
    [['smtpdcheck', '--no-c'], ['--no-cache']],
    [['smtpdcheck', 'autocomplete', ''], ['--help', 'bash', 'script', 'zsh']],
    [['smtpdcheck', 'autocomplete', 'script', ''], ['bash', 'zsh']],
    // serve has options of its own (SPEC §11): --listen and --max-connections, no --mx or --json.
    [['smtpdcheck', 'serve', '--li'], ['--listen']],
    [['smtpdcheck', 'serve', '--listen', 'inet:127.0.0.1:10040', '--m'], ['--max-connections', '--metrics']],
    [['smtpdcheck', 'serve', '--q'], ['--query']],
    [['smtpdcheck', 'serve', '--query', 'inet:127.0.0.1:10040', '--re'], ['--recipient']],
    [['smtpdcheck', 'serve', '--std'], ['--stdio']],
    [['smtpdcheck', 'serve', '--se'], ['--server-address']],
    [['smtpdcheck', 'serve', '--listen', ''], []],
    [['smtpdcheck', 'serve', '--j'], []],
    [['smtpdcheck', 'serve', '-v', '--no-'], ['--no-cache']],
    [['smtpdcheck', '--li'], []],
    [['smtpdcheck', '--print-recipe', ''], [...RECIPES].sort()],
    [['smtpdcheck', '--print-recipe', 'ex'], ['exim', 'exim-serve']],
    [['smtpdcheck', 'serve', '--print-recipe', ''], []],
  ])('%j', async (words, expected) => {
    expect(await tab(words)).toEqual({reply: expected, stderr: ''})
  })

  it('the first word: the subcommands bin/run.js routes', async () => {
    const {reply, stderr} = await tab(['smtpdcheck', ''])
    expect(stderr).toBe('')
    expect(reply).toContain('autocomplete')
    for (const word of reply) expect(SUBCOMMANDS).toContain(word)
  })

  it('--cache-file values are file names, as a separate word or after "="', async () => {
    const expected = [join(files, 'cache.json'), join(files, 'cached.json'), join(files, 'cachedir')]
    expect(await tab(['smtpdcheck', '-v', '--cache-file', join(files, 'cache')])).toEqual({reply: expected, stderr: ''})
    expect(await tab(['smtpdcheck', '--cache-file', '=', join(files, 'cache')])).toEqual({reply: expected, stderr: ''})
    expect(await tab(['smtpdcheck', 'serve', '--cache-file', join(files, 'cache')])).toEqual({reply: expected, stderr: ''})
  })

  it('any words, any cursor: what is offered follows SPEC §2, and nothing is printed', async () => {
    const word = fc.oneof(
      fc.constantFrom(...LONG, '-v', '-4', '--', '10:mx1.example.org', 'mx2.example.org', '[::1]', 'autocomplete', 'a b', "it's", '$(x)', '*'),
      fc.string({maxLength: 6}),
    )
    const reached = {options: 0, subcommands: 0, afterDashes: 0, value: 0, nothing: 0}
    await fc.assert(fc.asyncProperty(fc.array(word, {maxLength: 5}), fc.constantFrom('', '-', '--', '--c', '--no', 'a', 'au', '--ipv'), async (before, cur) => {
      fc.pre(before[0] !== 'autocomplete' && before[0] !== 'serve')
      const words = ['smtpdcheck', ...before, cur]
      const prev = before.at(-1)
      // The oracle, from SPEC §2: after `--` only server words; after a value option its value; a `-` word is an option; the first word may be a subcommand.
      let expected: string[]
      if (before.includes('--')) (expected = [], reached.afterDashes++)
      else if (prev !== undefined && VALUED.includes(prev)) (expected = prev === '--cache-file' ? (undefined as never) : prev === '--print-recipe' ? starting(RECIPES, cur) : [], reached.value++)
      else if (cur.startsWith('-')) (expected = starting(LONG, cur), reached.options++)
      else if (before.length === 0) (expected = starting(SUBCOMMANDS, cur), reached.subcommands++)
      else (expected = [], reached.nothing++)
      const {reply, stderr} = await tab(words)
      expect(stderr).toBe('')
      if (expected === undefined) return
      if (before.length === 0 && !cur.startsWith('-')) for (const w of reply) expect(expected).toContain(w)
      else expect(reply).toEqual(expected)
    }), {numRuns: 160})
    for (const [branch, count] of Object.entries(reached)) expect(count, branch).toBeGreaterThan(0)
  })
})

describe('autocomplete instructions and the zsh script', () => {
  it('bash: the steps load the same script; no generic "command --<TAB>" text', async () => {
    const r = await runCli(['autocomplete', 'bash'])
    expect(r).toMatchObject({status: 0, stderr: ''})
    expect(r.stdout).toContain(`eval "$(smtpdcheck autocomplete script bash)"`)
    expect(r.stdout).not.toContain('command --')
  })

  it('zsh: a #compdef function with every option and files for --cache-file', async () => {
    const r = await runCli(['autocomplete', 'script', 'zsh'])
    expect(r).toMatchObject({status: 0, stderr: ''})
    expect(r.stdout.startsWith('#compdef smtpdcheck\n')).toBe(true)
    for (const option of LONG) expect(r.stdout).toContain(option)
    expect(r.stdout).toMatch(/--cache-file=\[[^\n]*\]:PATH:_files'/)
    expect(r.stdout).toContain(`:${RECIPES.join('|')}:(${RECIPES.join(' ')})'`) // --print-recipe offers the recipes
    expect(r.stdout).toContain(`'*--listen=[`) // serve's own options, --listen repeatable
  })

  it.skipIf(!ZSH)('zsh: the script parses, and compinit binds it to smtpdcheck from $fpath', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ux-completion-zsh-'))
    writeFileSync(join(dir, '_smtpdcheck'), (await runCli(['autocomplete', 'script', 'zsh'])).stdout)
    await exec(ZSH!, ['-n', join(dir, '_smtpdcheck')])
    const program = `fpath=(${dir} $fpath); autoload -Uz compinit; compinit -u -d ${dir}/zcompdump; print -r -- \${_comps[smtpdcheck]}`
    const {stdout, stderr} = await exec(ZSH!, ['-f', '-c', program], {encoding: 'utf8'})
    expect({stdout, stderr}).toEqual({stdout: '_smtpdcheck\n', stderr: ''})
  })

  it.each([[['fish']], [['script']], [['script', 'bash', 'x']]])('%j: one line, exit 2', async (args) => {
    const r = await runCli(['autocomplete', ...args])
    expect(r).toMatchObject({stdout: '', status: 2})
    expect(r.stderr).toMatch(/^smtpdcheck: autocomplete: [^\n]*\n$/)
  })
})

describe('--help', () => {
  it('one space after the name, the summary once, the word grammar, --, the cache default', async () => {
    const r = await runCli(['--help'])
    expect(r).toMatchObject({status: 0, stderr: ''})
    expect(r.stdout).not.toMatch(/\$ smtpdcheck {2}/)
    expect(r.stdout).toContain('$ smtpdcheck [--stop {ip-addr|name}]')
    expect(r.stdout.split('Is a more preferred MX of this domain up right now?')).toHaveLength(2)
    expect(r.stdout).toContain('Everything after "--" is a server word')
    expect(r.stdout).toContain('10:[2001:db8::1]')
    expect(r.stdout.replace(/\s+/g, ' ')).toContain('~/.cache/smtpdcheck/cache.json when $XDG_CACHE_HOME is unset')
    expect(r.stdout).not.toContain('command --')
  })
})
