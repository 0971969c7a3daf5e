// Issue 15, messages: each mistake gets one line naming what to do instead, through the
// built binary (nothing is probed: every case is a usage error before any socket opens).
import fc from 'fast-check'
import {describe, expect, it} from 'vitest'

import {nearestOption, parseCommandLine} from '../src/cli/argv.js'
import {runCli} from './cli.js'

/** One line `smtpdcheck: …` containing `part`, exit 2, nothing on stdout. */
async function expectUsage(args: string[], part: string) {
  const r = await runCli(['--no-cache', '--dns-server', '127.0.15.53:1', ...args])
  expect(r.stdout).toBe('')
  expect(r.status).toBe(2)
  expect(r.stderr).toMatch(/^smtpdcheck: [^\n]*\n$/)
  expect(r.stderr).toContain(part)
}

describe('one clear line for the usual mistakes', () => {
  it.each([
    [['127.0.0.1:2525'], 'bad server "127.0.0.1:2525": a port goes in --port, not in the server word (--port 2525 127.0.0.1)'],
    [['10:mx1.example.org:2525'], 'a port goes in --port, not in the server word (--port 2525 10:mx1.example.org)'],
    [['[::1]:2525'], 'a port goes in --port'],
    [['fe80::1%eth0'], 'bad server "fe80::1%eth0": zone indexes (%…) are not supported'],
    [['10:[fe80::1%2]'], 'zone indexes (%…) are not supported'],
    [['--stop', 'fe80::1%eth0', '10:a.example'], 'bad --stop "fe80::1%eth0": zone indexes (%…) are not supported'],
    [['--stop', '10:mx1.example.org', '20:mx2.example.org'], 'bad --stop "10:mx1.example.org": looks like a server word (prio:host)'],
    [['-4', '-6', '127.0.0.1'], 'options "-4" (--ipv4) and "-6" (--ipv6) cannot be used together'],
    [['-6', '-4', '127.0.0.1'], 'options "-6" (--ipv6) and "-4" (--ipv4) cannot be used together'],
    [['--ipv6', '-4', '127.0.0.1'], 'options "--ipv6" and "-4" (--ipv4) cannot be used together'],
    [['--verb', '127.0.0.1'], 'unknown option "--verb"; did you mean --verbose? (see smtpdcheck --help)'],
    [['--time', '3', '127.0.0.1'], 'did you mean --timeout?'],
    [['--stpo', 'x', '127.0.0.1'], 'did you mean --stop?'],
    [['--mx-', 'example.org'], 'did you mean --mx?'],
    [['--no-cach', '127.0.0.1'], 'did you mean --no-cache?'],
    [['--jsno', '127.0.0.1'], 'did you mean --json?'],
  ])('%j', async (args, part) => {
    await expectUsage(args, part)
  })

  it('a word far from every option gets no guess', async () => {
    const r = await runCli(['--bogus', '127.0.0.1'])
    expect(r).toMatchObject({stdout: '', stderr: 'smtpdcheck: unknown option "--bogus" (see smtpdcheck --help)\n', status: 2})
  })
})

/** The long names a user can type, written out from SPEC §2 (not read from the flag table). */
const LONG = ['stop', 'timeout', 'port', 'attempt-delay', 'mx', 'dns-server', 'ipv4', 'ipv6', 'sequential', 'negative-ttl',
  'positive-ttl', 'cache-file', 'cache', 'no-cache', 'verbose', 'json', 'help', 'version']

/** Every word one deletion, substitution of a letter, or swap of neighbours away from `name`. */
function oneEditAway(name: string): Set<string> {
  const out = new Set<string>()
  for (let i = 0; i < name.length; i++) {
    out.add(name.slice(0, i) + name.slice(i + 1))
    if (i + 1 < name.length) out.add(name.slice(0, i) + name[i + 1] + name[i] + name.slice(i + 2))
    for (const c of 'abcdefghijklmnopqrstuvwxyz-') out.add(name.slice(0, i) + c + name.slice(i + 1))
  }
  out.delete(name)
  return out
}

describe('did you mean: a typo of a long option, one edit away', () => {
  it('suggests a name the typo is one edit (or a prefix) away from, and nothing else', () => {
    const seen = {suggested: 0, none: 0}
    const typo = fc.constantFrom(...LONG).filter((n) => n.length >= 3).chain((name) => fc.constantFrom(...oneEditAway(name)).map((t) => ({name, t})))
    fc.assert(fc.property(typo, ({t}) => {
      fc.pre(!LONG.includes(t) && t !== '')
      const guess = nearestOption(`--${t}`)
      // The oracle: the names this typo is one edit from, or the only name it begins.
      const near = LONG.filter((n) => oneEditAway(n).has(t) || n.startsWith(t))
      if (guess === undefined) seen.none++
      else seen.suggested++
      if (guess !== undefined) expect(near).toContain(guess.slice(2))
      if (near.length === 1 && near[0].length >= 3) expect(guess).toBe(`--${near[0]}`)
      // And the parser uses it: the message carries the guess, or no guess.
      expect(() => parseCommandLine([`--${t}`, 'a'])).toThrow(guess ? `did you mean ${guess}?` : `unknown option "--${t}" (see`)
    }), {numRuns: 600})
    expect(seen.suggested).toBeGreaterThan(300)
    expect(seen.none).toBeGreaterThan(0)
  })
})
