// The manual page: lint-clean under mandoc, and it documents every flag the command has.
import {execFile} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {promisify} from 'node:util'
import {beforeAll, describe, expect, it} from 'vitest'

import Check from '../src/commands/check.js'
import {manL} from './man-page.js'

const run = promisify(execFile)
const PAGE = new URL('../man/smtpdcheck.1', import.meta.url).pathname

/** mandoc's output; a missing mandoc fails the test with a clear message (.ci/run installs it). */
async function mandoc(args: string[]): Promise<{stdout: string; stderr: string}> {
  try {
    return await run('mandoc', [...args, PAGE], {encoding: 'utf8'})
  } catch (error) {
    const e = error as NodeJS.ErrnoException & {stdout?: string; stderr?: string}
    if (e.code === 'ENOENT') throw new Error('mandoc is not installed: apt-get install -y mandoc (.ci/run does this)')
    return {stdout: e.stdout ?? '', stderr: e.stderr ?? ''}
  }
}

describe('man/smtpdcheck.1', () => {
  let text = ''
  beforeAll(async () => {
    text = (await mandoc(['-Tascii'])).stdout.replace(/.\x08/g, '')
  })

  it('mandoc -Tlint -W warning prints nothing', async () => {
    const {stdout, stderr} = await mandoc(['-Tlint', '-W', 'warning'])
    expect(stdout + stderr).toBe('')
  })

  it('has the sections a user looks for', () => {
    for (const section of ['NAME', 'SYNOPSIS', 'DESCRIPTION', 'EXIT STATUS', 'ENVIRONMENT', 'FILES', 'EXAMPLES', 'COMPATIBILITY']) {
      expect(text).toMatch(new RegExp(`^${section}$`, 'm'))
    }
  })

  it('documents every flag of the command', () => {
    const flags = Check.flags as Record<string, {char?: string; allowNo?: boolean}>
    for (const [name, flag] of Object.entries(flags)) {
      const spelled = flag.char && /^\d$/.test(flag.char) ? `-${flag.char}` : `--${name}`
      expect(text, spelled).toContain(spelled)
      if (flag.allowNo) expect(text).toContain(`--no-${name}`)
    }
    expect(text).toContain('autocomplete')
  })

  it('carries the restored examples of SPEC §8 and the Mail Avenger recipe', () => {
    const flat = text.replace(/\\\n\s+/g, '')
    expect(flat).toContain('smtpdcheck --stop s2.domain.com 10:s1.domain.com 10:s2.domain.com 20:s3.domain.com')
    expect(flat).toContain('smtpdcheck --stop s2.domain.com 10:s1.domain.com 20:s2.domain.com 30:s3.domain.com')
    // The Mail Avenger recipe of SPEC §1, with the mail server's cache file (test/recipes.test.ts).
    expect(flat).toContain('--stop $MYIP $RECIP_MXES`')
    expect(text).toContain('test -n "$server" && defer "Please use server $server"')
  })

  it('names the cache location and its environment variable', () => {
    expect(text).toContain('XDG_CACHE_HOME')
    expect(text).toContain('smtpdcheck/cache.json')
  })

  it('is the page package.json installs', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {man: string[]}
    expect(pkg.man).toContain('./man/smtpdcheck.1')
  })
})

/** The page as a reader sees it: groff (what `man -l` runs) or mandoc, 80 columns, plain text. */
async function rendered(renderer: 'groff' | 'mandoc'): Promise<string> {
  const [cmd, args] = renderer === 'groff' ? ['groff', ['-mandoc', '-Tutf8', '-rLL=78n', '-P-c', PAGE]] : ['mandoc', ['-Tutf8', '-Owidth=80', PAGE]]
  const {stdout} = await run(cmd, args as string[], {encoding: 'utf8', env: {...process.env, GROFF_NO_SGR: '1'}})
  return stdout.replace(/.\x08/g, '')
}

describe.each(['groff', 'mandoc'] as const)('man/smtpdcheck.1 rendered by %s', (renderer) => {
  let page = ''
  beforeAll(async () => {
    page = await rendered(renderer)
  })

  it('balances every quote it opens', () => {
    for (const [open, close] of [['‘', '’'], ['“', '”']]) {
      expect(page.split(open).length, `${open}…${close}`).toBe(page.split(close).length)
    }
    expect(page.replace(/\s+/g, ' ')).toContain('(‘127.1’, ‘0x7f000001’, ‘010.0.0.1’)')
  })

  it('keeps every line within 80 columns (no table cell overflows)', () => {
    const wide = page.split('\n').map((line) => line.replace(/\t/g, '        ')).filter((line) => [...line].length > 80)
    expect(wide).toEqual([])
  })

  it('shows each exit status with its own words', () => {
    const section = page.slice(page.indexOf('\nEXIT STATUS\n'), page.indexOf('\nEXAMPLES\n'))
    expect(section).toMatch(/^\s+1\s+A candidate is available/m)
    expect(section).toMatch(/^\s+0\s+No candidate is available/m)
    expect(section).toMatch(/^\s+2\s+A usage error/m)
    expect(section).not.toMatch(/nothingone|nothing\S/)
  })
})

describe('man -l man/smtpdcheck.1 (man-db + groff, what users run)', () => {
  let shown = {stdout: '', stderr: ''}
  beforeAll(async () => {
    shown = await manL()
  })

  it('prints nothing on stderr (groff aborted the references on a quoted %T)', () => {
    expect(shown.stderr).toBe('')
  })

  it('shows every section of the source, in order, and the footer', () => {
    const source = readFileSync(PAGE, 'utf8')
    const headings = [...source.matchAll(/^\.Sh (.+)$/gm)].map((m) => m[1].replace(/^"|"$/g, ''))
    expect(headings.length).toBeGreaterThan(10)
    let at = 0
    for (const heading of headings) {
      const found = shown.stdout.indexOf(`\n${heading}\n`, at)
      expect(found, heading).toBeGreaterThan(-1)
      at = found
    }
    expect(shown.stdout).toContain('RFC 7505')
    expect(shown.stdout).toContain('RFC 8305')
    expect(shown.stdout.trimEnd().split('\n').at(-1)).toMatch(/\d{4}/)
  })

  it('closes each quote before the next opens (no ‘a, ‘b’’)', () => {
    const text = shown.stdout.replace(/\s+/g, ' ')
    expect(text).not.toMatch(/‘[^’]*‘/)
    expect(text).toContain('(‘-x’, ‘--tim’)')
    expect(text).toContain('(‘mx’, ‘implicit’, ‘null’ or ‘nxdomain’)')
    expect(text).toContain('{"error": {"kind": ..., "message": ...}}')
  })

  it('makes flags only of flags (no "-30 -s")', () => {
    expect(shown.stdout).not.toMatch(/ -\d+ -s\b| -an -|(?: -[a-z]{2,}\b[,;.)]?){3}/)
    expect(shown.stdout.replace(/\s+/g, ' ')).toContain('--positive-ttl, 30 s; an unavailable one for --negative-ttl, 60 s')
  })
})
