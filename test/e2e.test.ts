// End to end through the built binary (bin/run.js): stdout, stderr and exit status for each
// row of SPEC §6, every kind of malformed input, and the SPEC §8 examples.
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {startDns} from '../fixtures/dns.js'
import {closedPort, startSmtp, until} from '../fixtures/smtp.js'
import {runCli} from './cli.js'
import {closedAfterEach} from './fixtures.js'

async function run(args: string[]) {
  const {stdout, stderr, status} = await runCli(['--no-cache', ...args])
  return {stdout, stderr, status}
}

const keep = closedAfterEach()

const smtpOn = (host: string, greeting = '220 primary ESMTP\r\n') => keep(startSmtp({host, greeting}))

describe('built binary, SPEC §6 rows', () => {
  it('prints the available candidate and exits 1 (issue 3 "done when")', async () => {
    const smtp = await smtpOn('127.0.0.1')
    const r = await run(['--port', String(smtp.port), '--stop', '127.0.0.2', '10:127.0.0.1', '20:127.0.0.2'])
    expect(r).toEqual({stdout: '127.0.0.1\n', stderr: '', status: 1})
    await until(() => smtp.connections.length === 1 && smtp.connections[0].closed)
    expect(smtp.sent()).toEqual(['QUIT\r\n'])
  })

  it('exits 0 with nothing on stdout when no candidate answers', async () => {
    const port = await closedPort('127.0.0.1')
    const r = await run(['--port', String(port), '--stop', '127.0.0.2', '10:127.0.0.1', '20:127.0.0.2'])
    expect(r).toEqual({stdout: '', stderr: '', status: 0})
  })

  it('prints the name as given, without its priority (system resolver, /etc/hosts)', async () => {
    const smtp = await smtpOn('127.0.0.1')
    const r = await run(['--port', String(smtp.port), '10:LocalHost.'])
    expect(r).toEqual({stdout: 'LocalHost.\n', stderr: '', status: 1})
  })

  it('prints a bracketed IPv6 word as given', async () => {
    const smtp = await smtpOn('::1')
    const r = await run(['--port', String(smtp.port), '--stop', '127.0.0.9', '5:[::1]'])
    expect(r).toEqual({stdout: '[::1]\n', stderr: '', status: 1})
  })

  it('a server that rejects (421) is unavailable: exit 0', async () => {
    const smtp = await smtpOn('127.0.0.1', '421 busy\r\n')
    const r = await run(['--port', String(smtp.port), '127.0.0.1'])
    expect(r).toEqual({stdout: '', stderr: '', status: 0})
    expect(smtp.connections).toHaveLength(1)
  })

  it('--stop as an IPv6 address in another spelling keeps the local entry out', async () => {
    const smtp = await smtpOn('127.0.0.1')
    const r = await run(['--port', String(smtp.port), '--stop', '0:0::1', '10:127.0.0.1', '10:[::1]'])
    expect(r).toEqual({stdout: '', stderr: '', status: 0})
    expect(smtp.connections).toHaveLength(0)
  })

  it('--stop as an ::ffff-mapped address matches the IPv4 entry', async () => {
    const smtp = await smtpOn('127.0.0.1')
    const r = await run(['--port', String(smtp.port), '--stop', '::ffff:127.0.0.2', '20:127.0.0.2', '10:127.0.0.1'])
    expect(r).toEqual({stdout: '127.0.0.1\n', stderr: '', status: 1})
  })

  it('the local host first and unprioritised: exit 0, nothing probed', async () => {
    const smtp = await smtpOn('127.0.0.1')
    const r = await run(['--port', String(smtp.port), '--stop', '127.0.0.2', '127.0.0.2', '127.0.0.1'])
    expect(r).toEqual({stdout: '', stderr: '', status: 0})
    expect(smtp.connections).toHaveLength(0)
  })
})

describe('start and end of the command line', () => {
  it('no arguments at all: a usage message on stderr, exit 2', async () => {
    const r = await runCli([])
    expect(r.status).toBe(2)
    expect(r.stdout).toBe('')
    expect(r.stderr).toMatch(/^usage: smtpdcheck .*\[prio:\]server/)
    expect(r.stderr.split('\n')).toHaveLength(2)
  })

  it.each([[['--timeout', '1']], [['--']], [['--stop', '127.0.0.1', '--']], [['--no-cache']]])(
    'an empty server list after options (%j): exit 0, nothing printed',
    async (args) => {
      expect(await runCli(args)).toMatchObject({stdout: '', stderr: '', status: 0})
    },
  )

  it.each([['--help'], ['-h']])('%s: help on stdout, exit 0', async (flag) => {
    const r = await runCli([flag])
    expect(r.status).toBe(0)
    expect(r.stderr).toBe('')
    for (const option of ['--stop', '--timeout', '--port', '--dns-server', '--sequential', '--attempt-delay', '--json', '--verbose']) {
      expect(r.stdout).toContain(option)
    }
  })

  it('--version: the version on stdout, exit 0', async () => {
    const r = await runCli(['--version'])
    expect(r.status).toBe(0)
    expect(r.stderr).toBe('')
    expect(r.stdout).toMatch(/^smtpdcheck\/\d+\.\d+\.\d+ /)
  })

  it('options may follow the server words; a word after -- beginning with "-" is a server word', async () => {
    const smtp = await smtpOn('127.0.0.1')
    const r = await run(['10:127.0.0.1', '--port', String(smtp.port), '--', '-x'])
    expect(r.status).toBe(2)
    expect(r.stderr).toBe('smtpdcheck: bad server "-x": bad label "-x" (letters, digits and inner hyphens only)\n')
    expect(smtp.connections).toHaveLength(0)
  })
})

describe('names through --dns-server (loopback DNS fixture)', () => {
  let dns: Awaited<ReturnType<typeof startDns>>
  beforeAll(async () => {
    dns = await startDns({
      's1.domain.com': {A: ['127.0.0.1']},
      's2.domain.com': {A: ['127.0.0.2']},
      's3.domain.com': {A: ['127.0.0.3']},
      autocomplete: {A: ['127.0.0.1']},
      'nx.test': {nxdomain: true},
      'nodata.test': {},
    })
  })
  afterAll(async () => {
    await dns.close()
  })
  const viaDns = (port: number, args: string[]) => run(['--dns-server', dns.address, '--port', String(port), ...args])

  it('SPEC §8, first example: always exits 0, s1 up or not, nothing probed', async () => {
    const smtp = await smtpOn('127.0.0.1')
    const r = await viaDns(smtp.port, ['--stop', 's2.domain.com', '10:s1.domain.com', '10:s2.domain.com', '20:s3.domain.com'])
    expect(r).toEqual({stdout: '', stderr: '', status: 0})
    expect(smtp.connections).toHaveLength(0)
  })

  it('SPEC §8, second example: prints s1.domain.com and exits 1 if s1 is up', async () => {
    const smtp = await smtpOn('127.0.0.1')
    const r = await viaDns(smtp.port, ['--stop', 's2.domain.com', '10:s1.domain.com', '20:s2.domain.com', '30:s3.domain.com'])
    expect(r).toEqual({stdout: 's1.domain.com\n', stderr: '', status: 1})
  })

  it('SPEC §8, second example: exits 0 if s1 is down (s3 is up but not more preferred)', async () => {
    const s3 = await smtpOn('127.0.0.3')
    const r = await viaDns(s3.port, ['--stop', 's2.domain.com', '10:s1.domain.com', '20:s2.domain.com', '30:s3.domain.com'])
    expect(r).toEqual({stdout: '', stderr: '', status: 0})
    expect(s3.connections).toHaveLength(0)
  })

  it.each(['nx.test', 'nodata.test'])('a --stop name that does not resolve (%s): exit 2 naming it, nothing probed', async (name) => {
    const smtp = await smtpOn('127.0.0.1')
    const r = await viaDns(smtp.port, ['--stop', name, '10:127.0.0.1'])
    expect(r.status).toBe(2)
    expect(r.stdout).toBe('')
    expect(r.stderr).toMatch(new RegExp(`^smtpdcheck: [^\\n]*"${name.replace('.', '\\.')}"[^\\n]*\\n$`))
    expect(smtp.connections).toHaveLength(0)
  })

  it.each([[['autocomplete.']], [['--', 'autocomplete']], [['10:autocomplete']]])('%j is a server word', async (words) => {
    const smtp = await smtpOn('127.0.0.1')
    const r = await viaDns(smtp.port, words)
    expect(r).toEqual({stdout: `${words.at(-1)!.replace(/^10:/, '')}\n`, stderr: '', status: 1})
  })
})

// Every malformed word, flag or value: exit 2, one line `smtpdcheck: …` naming it, empty
// stdout, and nothing probed although a live server is among the valid words.
const label64 = 'a'.repeat(64)
const long254 = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(62)}`
const MALFORMED: Array<[string, string[], string]> = [
  // [what, arguments, text the message must contain]
  ['short IPv4', ['127.1'], '"127.1"'],
  ['hex IPv4', ['0x7f.0.0.1'], '"0x7f.0.0.1"'],
  ['octal-looking IPv4', ['010.0.0.1'], '"010.0.0.1"'],
  ['IPv4 part over 255', ['256.0.0.1'], '"256.0.0.1"'],
  ['three-part IPv4', ['1.2.3'], '"1.2.3"'],
  ['five-part IPv4', ['1.2.3.4.5'], '"1.2.3.4.5"'],
  ['priority over 65535', ['70000:host'], '"70000:host"'],
  ['priority 65536', ['65536:host'], '"65536:host"'],
  ['negative priority', ['-1:host'], '"-1:host"'],
  ['letter priority', ['a:host'], '"a:host"'],
  ['no host after the priority', ['10:'], '"10:"'],
  ['no priority before the colon', [':host'], '":host"'],
  ['unbracketed IPv6 with a priority', ['10:::1'], '"10:::1"'],
  ['brackets around a name', ['[not-v6]'], '"[not-v6]"'],
  ['brackets around IPv4', ['10:[127.0.0.1]'], '"10:[127.0.0.1]"'],
  ['unclosed bracket', ['[::1'], '"[::1"'],
  ['bracket with a port', ['10:[::1]:25'], '"10:[::1]:25"'],
  ['IPv6 zone', ['fe80::1%eth0'], '"fe80::1%eth0"'],
  ['label of 64 octets', [`${label64}.example`], label64],
  ['name of 254 octets', [long254], `"${long254.slice(0, 200)}…": host name longer than 253 octets`],
  ['leading and trailing hyphen (read as an option)', ['-host-'], '"-host-"'],
  ['leading and trailing hyphen after --', ['--', '-host-'], '"-host-"'],
  ['label ending in a hyphen', ['host-.'], '"host-."'],
  ['underscore', ['under_score'], '"under_score"'],
  ['all-digit last label', ['mx.123'], '"mx.123"'],
  ['empty label', ['a..b'], '"a..b"'],
  ['just a dot', ['.'], '"."'],
  ['empty word', [''], '""'],
  ['a lone hyphen', ['-'], '"-"'],
  ['an option name after --', ['--', '--timeout'], '"--timeout"'],
  ['space in a name', ['mx .example'], '"mx .example"'],
  ['unknown long option', ['--bogus'], '"--bogus"'],
  ['unknown short option', ['-x'], '"-x"'],
  ['abbreviated option', ['--tim', '5'], '"--tim"'],
  ['unknown cluster of short options', ['-vhost'], '"-vhost"'],
  ['--timeout -1', ['--timeout', '-1'], '"-1"'],
  ['--timeout=-5', ['--timeout=-5'], '"-5"'],
  ['--timeout abc', ['--timeout', 'abc'], '"abc"'],
  ['--timeout Infinity', ['--timeout', 'Infinity'], '"Infinity"'],
  ['--timeout NaN', ['--timeout', 'NaN'], '"NaN"'],
  ['--timeout 1e400', ['--timeout', '1e400'], '"1e400"'],
  ['--timeout empty', ['--timeout', ''], '--timeout ""'],
  ['--timeout longer than a timer', ['--timeout', '9999999'], '"9999999"'],
  ['--timeout given twice', ['--timeout', '1', '--timeout', '2'], '"--timeout"'],
  ['--timeout without a value', ['--timeout'], '"--timeout"'],
  ['--stop without a value', ['--stop'], '"--stop"'],
  ['--stop short IPv4', ['--stop', '127.1'], '"127.1"'],
  ['--stop bad name', ['--stop', 'bad_name'], '"bad_name"'],
  ['--stop empty', ['--stop', ''], '--stop ""'],
  ['--attempt-delay -5', ['--attempt-delay', '-5'], '"-5"'],
  ['--attempt-delay too large', ['--attempt-delay', '60001'], '"60001"'],
  ['--dns-server bad', ['--dns-server', 'bad'], '"bad"'],
  ['--dns-server port 0', ['--dns-server', '127.0.0.1:0'], '"127.0.0.1:0"'],
  ['--dns-server without a value', ['--dns-server'], '"--dns-server"'],
  ['-4 with -6', ['-4', '-6'], '"-4"'],
  ['-46', ['-46'], '"-6"'],
  ['a value for a boolean option', ['--json=1'], '"--json=1"'],
  ['a value for --verbose', ['--verbose=yes'], '"--verbose=yes"'],
  ['a value for --no-cache', ['--no-cache=1'], '"--no-cache=1"'],
  ['--negative-ttl abc', ['--negative-ttl', 'abc'], '"abc"'],
]
/** --port cases: the live server cannot be given its port; nothing listens on 25 for them either. */
const MALFORMED_PORT: Array<[string, string[], string]> = [
  ['--port 0', ['--port', '0'], '"0"'],
  ['--port 65536', ['--port', '65536'], '"65536"'],
  ['--port x', ['--port', 'x'], '"x"'],
  ['--port given twice', ['--port', '1', '--port', '2'], '"--port"'],
]

describe('malformed input through the binary: exit 2, one line naming it, nothing probed', () => {
  let live: Awaited<ReturnType<typeof startSmtp>>
  beforeAll(async () => {
    live = await startSmtp({host: '127.0.0.1', greeting: '220 live\r\n'})
  })
  afterAll(async () => {
    await live.close()
  })

  it('has at least 40 cases', () => {
    expect(MALFORMED.length + MALFORMED_PORT.length).toBeGreaterThanOrEqual(40)
  })

  const expectUsageError = (r: {stdout: string; stderr: string; status: number | null}, named: string) => {
    expect(r.status).toBe(2)
    expect(r.stdout).toBe('')
    expect(r.stderr).toMatch(/^smtpdcheck: [^\n]+\n$/)
    expect(r.stderr).toContain(named)
  }

  it.concurrent.each(MALFORMED)('%s', async (_, args, named) => {
    // The valid live word comes first; the bad word, flag or value after it.
    const r = await run(['--port', String(live.port), '10:127.0.0.1', ...args])
    expectUsageError(r, named)
    expect(live.connections).toHaveLength(0)
  })

  it.concurrent.each(MALFORMED_PORT)('%s', async (_, args, named) => {
    expectUsageError(await run(['10:127.0.0.1', ...args]), named)
  })

  it('the live server saw no connection (checked after the cases above)', async () => {
    // A control: the same live word without a mistake is probed.
    expect(live.connections).toHaveLength(0)
    const r = await run(['--port', String(live.port), '10:127.0.0.1'])
    expect(r.status).toBe(1)
    expect(live.connections).toHaveLength(1)
  })
})
