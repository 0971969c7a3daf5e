// --mx DOMAIN (SPEC §10, issue 11) through the built binary: a DNS fixture on 127.0.13.53
// serves the MX records, SMTP fixtures on 127.0.13.x (one port) are the exchanges.
import {describe, expect, it} from 'vitest'

import {startDns} from '../fixtures/dns.js'
import {startSmtp} from '../fixtures/smtp.js'
import {runCli} from './cli.js'
import {closedAfterEach} from './fixtures.js'

const keep = closedAfterEach()
const DNS_HOST = '127.0.13.53'

/**
 * Live SMTP servers on 127.0.13.1 and .2 (and ::1) behind one port; 127.0.13.4 is dead
 * (nothing listens there: refused). `zone` adds names to the A records below.
 */
async function world(zone: Parameters<typeof startDns>[0] = {}, greetDelayMs = 0) {
  const greet = (socket: import('node:net').Socket) => {
    setTimeout(() => socket.destroyed || socket.write('220 fixture ESMTP\r\n'), greetDelayMs)
  }
  const first = await keep(startSmtp({host: '127.0.13.1', greet}))
  const port = first.port
  const second = await keep(startSmtp({host: '127.0.13.2', port, greet}))
  const six = await keep(startSmtp({host: '::1', port, greet}))
  const dns = await keep(startDns({
    'mxa.test': {A: ['127.0.13.1']},
    'mxb.test': {A: ['127.0.13.2']},
    'local.test': {A: ['127.0.13.3']},
    'dead.test': {A: ['127.0.13.4']},
    ...zone,
  }, {host: DNS_HOST}))
  const probes = () => first.connections.length + second.connections.length + six.connections.length
  const run = (args: string[], options?: {limitMs?: number}) => runCli(['--no-cache', '--dns-server', dns.address, '--port', String(port), ...args], options)
  return {dns, port, run, probes, first, second}
}

/** The JSON document's entries as `prio:name` words, in list order. */
const words = (stdout: string) => (JSON.parse(stdout).entries as Array<{prio: number | null; name: string}>).map((e) => `${e.prio}:${e.name}`)

describe('--mx DOMAIN: the list from DNS', () => {
  it('sorts by preference, equal preferences in DNS order (--sequential prints the first up in that order)', async () => {
    const w = await world({
      'ab.test': {MX: [[20, 'local.test'], [10, 'mxb.test'], [30, 'dead.test'], [10, 'mxa.test']]},
      'ba.test': {MX: [[20, 'local.test'], [10, 'mxa.test'], [30, 'dead.test'], [10, 'mxb.test']]},
    })
    const ab = await w.run(['--sequential', '--stop', '127.0.13.3', '--mx', 'ab.test'])
    expect(ab).toMatchObject({status: 1, stdout: 'mxb.test\n', stderr: ''})
    const ba = await w.run(['--sequential', '--stop', '127.0.13.3', '--mx', 'ba.test'])
    expect(ba).toMatchObject({status: 1, stdout: 'mxa.test\n', stderr: ''})
    const json = await w.run(['--sequential', '--stop', '127.0.13.3', '--json', '--mx', 'ab.test'])
    expect(json.status).toBe(1)
    expect(words(json.stdout)).toEqual(['10:mxb.test', '10:mxa.test', '20:local.test', '30:dead.test'])
    expect(JSON.parse(json.stdout).mx).toEqual({domain: 'ab.test', outcome: 'mx', records: [
      {prio: 10, exchange: 'mxb.test'}, {prio: 10, exchange: 'mxa.test'}, {prio: 20, exchange: 'local.test'}, {prio: 30, exchange: 'dead.test'}]})
  })

  it('selection as for server words: the local host is the best MX → exit 0, nothing probed', async () => {
    const w = await world({'best.test': {MX: [[20, 'mxa.test'], [5, 'local.test']]}})
    const r = await w.run(['--stop', 'local.test', '--mx', 'best.test'])
    expect(r).toMatchObject({status: 0, stdout: '', stderr: ''})
    expect(w.probes()).toBe(0)
  })

  it('NODATA: the implicit MX, the domain itself at preference 0, is probed', async () => {
    const w = await world({'plain.test': {A: ['127.0.13.2']}})
    const r = await w.run(['--json', '--mx', 'plain.test.'])
    expect(r.status).toBe(1)
    const doc = JSON.parse(r.stdout)
    expect(doc.mx).toEqual({domain: 'plain.test', outcome: 'implicit', records: []})
    expect(words(r.stdout)).toEqual(['0:plain.test'])
    expect(doc.decision.server).toBe('plain.test')
    expect(w.dns.queries).toContainEqual({name: 'plain.test', type: 'MX'})
  })

  it('a CNAME at the domain is followed (the answer holds the alias, then the MX records)', async () => {
    const w = await world({'alias.test': {CNAME: 'real.test'}, 'real.test': {MX: [[5, 'mxb.test']]}})
    expect(await w.run(['--mx', 'alias.test'])).toMatchObject({status: 1, stdout: 'mxb.test\n', stderr: ''})
  })

  it('a CNAME to a name without MX records (c-ares gives an empty list, not ENODATA): the implicit MX', async () => {
    const w = await world({'alias.test': {CNAME: 'host.test'}, 'host.test': {A: ['127.0.13.1']}})
    const r = await w.run(['--json', '--mx', 'alias.test'])
    expect(r.status).toBe(1)
    expect(JSON.parse(r.stdout).mx.outcome).toBe('implicit')
    expect(words(r.stdout)).toEqual(['0:alias.test'])
  })

  it('a null MX (0 .) → no candidate, exit 0, nothing probed', async () => {
    const w = await world({'null.test': {MX: [[0, '.']]}})
    const r = await w.run(['--verbose', '--mx', 'null.test'])
    expect(r).toMatchObject({status: 0, stdout: ''})
    expect(r.stderr).toMatch(/MX null\.test: 0:\. after \d+ms\n.*MX null\.test: a null MX \(RFC 7505\)/)
    expect(w.probes()).toBe(0)
    const json = await w.run(['--json', '--mx', 'null.test'])
    expect(JSON.parse(json.stdout).mx).toEqual({domain: 'null.test', outcome: 'null', records: [{prio: 0, exchange: '.'}]})
  })

  it('a "." record among others is ignored', async () => {
    const w = await world({'dots.test': {MX: [[0, '.'], [10, 'mxa.test'], [20, '']]}})
    const r = await w.run(['--json', '--mx', 'dots.test'])
    expect(r.status).toBe(1)
    expect(JSON.parse(r.stdout).mx.outcome).toBe('mx')
    expect(words(r.stdout)).toEqual(['10:mxa.test'])
    // Ignored, not refused as a bad exchange.
    expect((await w.run(['--verbose', '--mx', 'dots.test'])).stderr).not.toMatch(/skipped/)
  })

  it('NXDOMAIN → no candidate, exit 0, nothing probed', async () => {
    const w = await world()
    const r = await w.run(['--verbose', '--mx', 'nosuch.test'])
    expect(r).toMatchObject({status: 0, stdout: ''})
    expect(r.stderr).toMatch(/MX nosuch\.test: no such domain \(NXDOMAIN\)/)
    expect(w.probes()).toBe(0)
  })

  it.each([
    ['SERVFAIL', {servfail: true}, /server failure \(SERVFAIL\)/],
    ['REFUSED', {refused: true}, /query refused \(REFUSED\)/],
    ['no answer', {silent: true}, /no answer within --timeout 1 s \(ETIMEOUT\)/],
  ])('%s → exit 2, one line naming the domain and the error, nothing probed', async (_, name, why) => {
    const w = await world({'broken.test': {...name, MX: [[10, 'mxa.test']]}})
    const r = await w.run(['--timeout', '1', '--mx', 'broken.test'])
    expect(r.status).toBe(2)
    expect(r.stdout).toBe('')
    expect(r.stderr).toMatch(/^smtpdcheck: cannot look up the MX records of "broken\.test": .*\n$/)
    expect(r.stderr).toMatch(why)
    expect(r.ms).toBeLessThan(6000)
    expect(w.probes()).toBe(0)
  })

  it('an address-literal exchange is probed as that address (and --verbose says so)', async () => {
    const w = await world({'lit4.test': {MX: [[10, 'dead.test'], [20, '127.0.13.2']]}, 'lit6.test': {MX: [[10, '::1']]}})
    const r4 = await w.run(['--verbose', '--mx', 'lit4.test'])
    expect(r4).toMatchObject({status: 1, stdout: '127.0.13.2\n'})
    expect(r4.stderr).toContain('MX lit4.test: exchange 127.0.13.2 is an address literal (RFC 5321 forbids it): probed as that address')
    expect(await w.run(['--mx', 'lit6.test'])).toMatchObject({status: 1, stdout: '::1\n', stderr: ''})
  })

  it('an IDN domain is asked for in punycode (the fixture sees the xn-- name)', async () => {
    const w = await world({'xn--bcher-kva.test': {MX: [[10, 'mxa.test']]}})
    const r = await w.run(['--json', '--mx', 'BÜCHER.test'])
    expect(r.status).toBe(1)
    expect(JSON.parse(r.stdout).mx.domain).toBe('xn--bcher-kva.test')
    expect(w.dns.queries).toEqual(expect.arrayContaining([{name: 'xn--bcher-kva.test', type: 'MX'}]))
  })

  it('hostile exchange names are skipped with an escaped note, the others still used; never a crash', async () => {
    const w = await world({'hostile.test': {MX: [[1, 'a\x1b[31mb.test'], [2, 'sp ace.test'], [3, 'under_score.test'], [4, 'mx.123'],
      [5, '-h.test'], [6, 'b\u00fc.test'], [7, 'x'.repeat(63) + '.' + 'y'.repeat(63) + '.' + 'z'.repeat(63) + '.' + 'w'.repeat(61)], [50, 'mxb.test']]}})
    const r = await w.run(['--verbose', '--mx', 'hostile.test'])
    expect(r).toMatchObject({status: 1, stdout: 'mxb.test\n'})
    expect(r.stderr).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f]/)
    expect(r.stderr.match(/MX hostile\.test: exchange ".*" skipped: /g)).toHaveLength(6)
    const json = await w.run(['--json', '--mx', 'hostile.test'])
    expect(words(json.stdout)).toEqual([`7:${'x'.repeat(63)}.${'y'.repeat(63)}.${'z'.repeat(63)}.${'w'.repeat(61)}`, '50:mxb.test'])
    // Only junk: no usable record, no candidate (exit 0).
    const w2 = await world({'junk.test': {MX: [[10, 'under_score.test']]}})
    expect(await w2.run(['--mx', 'junk.test'])).toMatchObject({status: 0, stdout: '', stderr: ''})
  })

  it('the same exchange twice is one entry at its lowest preference (§2)', async () => {
    const w = await world({'dup.test': {MX: [[30, 'MXA.test'], [10, 'mxb.test'], [20, 'mxa.test']]}})
    const r = await w.run(['--json', '--mx', 'dup.test'])
    expect(words(r.stdout)).toEqual(['10:mxb.test', '20:mxa.test'])
  })

  it('the MX lookup has its own budget: a slow MX answer does not eat the servers\' --timeout', async () => {
    // MX answer after 700 ms, greeting after 700 ms, --timeout 1: one shared budget would end first.
    const w = await world({'slow.test': {MX: [[10, 'mxa.test']], delayMs: 700}}, 700)
    const r = await w.run(['--timeout', '1', '--mx', 'slow.test'])
    expect(r).toMatchObject({status: 1, stdout: 'mxa.test\n', stderr: ''})
  })
})

describe('--mx usage errors: one line, exit 2, no DNS query', () => {
  it.each([
    ['192.0.2.1', /an address literal/],
    ['[::1]', /an address literal/],
    ['::1', /an address literal/],
    ['127.1', /an address literal/],
    ['１２７.０.０.１', /an address literal/],
    ['', /empty domain/],
    ['a..test', /empty label/],
    ['under_score.test', /bad label/],
    ['mx.123', /all-digit label/],
    ['xn--a.test', /not a valid internationalized domain name/],
    ['a\x07b.test', /not a valid internationalized domain name|bad label/],
  ])('--mx %j', async (domain, why) => {
    const w = await world()
    const r = await w.run(['--mx', domain])
    expect(r.status).toBe(2)
    expect(r.stdout).toBe('')
    expect(r.stderr).toMatch(/^smtpdcheck: bad --mx "[^\n]*": [^\n]*\n$/)
    expect(r.stderr).toMatch(why)
    expect(r.stderr).not.toMatch(/[\x00-\x08\x0b-\x1f]/)
    expect(w.dns.queries).toEqual([])
  })

  it('--mx together with server words', async () => {
    const w = await world({'ok.test': {MX: [[10, 'mxa.test']]}})
    for (const args of [['--mx', 'ok.test', 'mxb.test'], ['mxb.test', '--mx', 'ok.test'], ['--mx', 'ok.test', '--', '-x']]) {
      const r = await w.run(args)
      expect(r).toMatchObject({status: 2, stdout: '', stderr: 'smtpdcheck: --mx and server words cannot be used together (one or the other gives the list)\n'})
    }
    expect(w.dns.queries).toEqual([])
    expect(w.probes()).toBe(0)
  })
})

describe('--mx: records of another owner (SPEC §10, issue 18 item 6)', () => {
  it('an MX record whose owner is not the domain asked (nor its CNAME target) is ignored', async () => {
    const w = await world({
      'wrongowner.test': {MX: [[10, 'mxa.test']], owner: 'other.test'},
      'mixedowner.test': {MX: [[20, 'mxb.test']], extra: [{type: 'MX', class: 'IN', name: 'evil.test', ttl: 60, data: {preference: 1, exchange: 'mxa.test'}}]},
      'alias.test': {CNAME: 'target.test'},
      'target.test': {MX: [[10, 'mxb.test']]},
    })
    const wrong = await w.run(['--json', '--mx', 'wrongowner.test'])
    expect(JSON.parse(wrong.stdout).mx).toEqual({domain: 'wrongowner.test', outcome: 'implicit', records: []})
    const mixed = await w.run(['--json', '--mx', 'mixedowner.test'])
    expect(JSON.parse(mixed.stdout).mx.records).toEqual([{prio: 20, exchange: 'mxb.test'}])
    expect(words(mixed.stdout)).toEqual(['20:mxb.test'])
    expect(mixed.status).toBe(1) // mxb.test is up; evil.test's mxa.test was never a candidate
    const alias = await w.run(['--json', '--mx', 'alias.test'])
    expect(JSON.parse(alias.stdout).mx.records).toEqual([{prio: 10, exchange: 'mxb.test'}])
  })
})
