// Never defer on a guess (issue 18; SPEC §3, §10, §11): the local host's identities (every
// --stop; in serve also server_address), the not-found rule of --mx and serve, lookups in
// preference order with a bound in flight. Through the built binary and serve's real policy
// socket; DNS from the loopback fixture, MXes are SMTP fixtures. Loopback 127.20.0.0/16:
// 127.20.x.92 is the "private" address a host behind NAT sees itself at, 127.20.x.93 the
// "public" one DNS lists for it.
import {setTimeout as sleep} from 'node:timers/promises'
import {afterEach, describe, expect, it} from 'vitest'

import {startDns} from '../fixtures/dns.js'
import {startSmtp} from '../fixtures/smtp.js'
import {startTimed} from '../fixtures/spawn.js'
import {BIN, runCli} from './cli.js'
import {closedAfterEach} from './fixtures.js'
import {DEFER, DUNNO, rcpt, talk} from './policy/client.js'

const keep = closedAfterEach()

const PRIVATE = '127.20.1.92'
const PUBLIC = '127.20.1.93'
const PRIMARY = '127.20.1.10'
const THIRD = '127.20.1.30'

type Zone = Record<string, {MX?: Array<[number, string]>; A?: string[]; AAAA?: string[]; silent?: boolean; servfail?: boolean; nxdomain?: boolean}>

/**
 * nat.test: 10 mx1 (the primary, 127.20.1.10), 20 mx2 (this host, by its public address
 * 127.20.1.93), 30 mx3 (127.20.1.30). listed.test does not list this host. own-*.test list
 * mx2 under a name whose lookup fails (SERVFAIL, NXDOMAIN, no answer).
 */
function zone(): Zone {
  return {
    'nat.test': {MX: [[10, 'mx1.nat.test'], [20, 'mx2.nat.test'], [30, 'mx3.nat.test']]},
    'natfirst.test': {MX: [[10, 'mx2.nat.test'], [20, 'mx1.nat.test']]},
    'listed.test': {MX: [[10, 'mx1.nat.test'], [30, 'mx3.nat.test']]},
    'own-servfail.test': {MX: [[10, 'mx1.nat.test'], [20, 'broken.nat.test'], [30, 'mx3.nat.test']]},
    'own-nxdomain.test': {MX: [[10, 'mx1.nat.test'], [20, 'gone.nat.test'], [30, 'mx3.nat.test']]},
    'own-silent.test': {MX: [[10, 'mx1.nat.test'], [20, 'hung.nat.test'], [30, 'mx3.nat.test']]},
    'mx1.nat.test': {A: [PRIMARY]},
    'mx2.nat.test': {A: [PUBLIC]},
    'mx3.nat.test': {A: [THIRD]},
    'broken.nat.test': {servfail: true},
    'gone.nat.test': {nxdomain: true},
    'hung.nat.test': {silent: true},
  }
}

/**
 * The world: the DNS fixture, the primary (greets after `primaryDelayMs`) and mx3 (greets at
 * once) on one port. A primary that greets late makes "every MX is a candidate" (the old
 * rule) print mx3, the rule that finds the local host print mx1.
 */
async function world(primaryDelayMs = 0) {
  const dns = await keep(startDns(zone(), {host: '127.20.1.53'}))
  const primary = await keep(startSmtp({host: PRIMARY, greet: (socket) => void setTimeout(() => socket.destroyed || socket.write('220 mx1 ESMTP\r\n'), primaryDelayMs)}))
  const third = await keep(startSmtp({host: THIRD, port: primary.port, greeting: '220 mx3 ESMTP\r\n'}))
  return {dns, primary, third, args: ['--no-cache', '--dns-server', dns.address, '--port', String(primary.port), '--timeout', '3']}
}

describe('the command: identities and the not-found rule (--mx)', () => {
  it('NAT, primary: --stop $MYIP (private) alone is not found → 0; with the public address or name too → 0, nothing probed', async () => {
    const w = await world()
    for (const stops of [[PRIVATE], [PRIVATE, PUBLIC], [PRIVATE, 'mx2.nat.test']]) {
      const r = await runCli([...w.args, ...stops.flatMap((s) => ['--stop', s]), '--mx', 'natfirst.test'])
      expect({stops, stdout: r.stdout, status: r.status, stderr: r.stderr}).toEqual({stops, stdout: '', status: 0, stderr: ''})
    }
    expect(w.primary.connections).toHaveLength(0)
  })

  it('NAT, backup with the primary up: --stop $MYIP --stop <public> → the primary, not the less preferred mx3', async () => {
    const w = await world(300)
    for (const pub of [PUBLIC, 'mx2.nat.test', 'MX2.nat.test.']) {
      const r = await runCli([...w.args, '--stop', PRIVATE, '--stop', pub, '--mx', 'nat.test'])
      expect({pub, stdout: r.stdout, status: r.status, stderr: r.stderr}).toEqual({pub, stdout: 'mx1.nat.test\n', status: 1, stderr: ''})
    }
    expect(w.third.connections).toHaveLength(0)
  })

  it('not listed: exit 0 although MXes are up; said under --verbose and in --json', async () => {
    const w = await world()
    const plain = await runCli([...w.args, '--stop', PRIVATE, '--mx', 'listed.test'])
    expect([plain.stdout, plain.status, plain.stderr]).toEqual(['', 0, ''])
    const verbose = await runCli([...w.args, '--verbose', '--stop', PRIVATE, '--mx', 'listed.test'])
    expect(verbose.status).toBe(0)
    expect(verbose.stderr).toMatch(/candidates: none \(local host not among the MX/)
    expect(verbose.stderr).toMatch(/local host not among the MX: exit 0\n$/)
    const json = await runCli([...w.args, '--json', '--stop', PRIVATE, '--mx', 'listed.test'])
    const doc = JSON.parse(json.stdout)
    expect(doc.decision).toMatchObject({server: null, exitCode: 0, reason: 'local host not among the MX'})
    expect(doc.stop).toEqual([{given: PRIVATE, addresses: [PRIVATE]}])
    expect(doc.selection.candidates).toEqual([])
    expect(w.primary.connections).toHaveLength(0)
    expect(w.third.connections).toHaveLength(0)
  })

  it('without --stop every MX is a candidate (is any MX of the domain up?); with one that is not listed, none is', async () => {
    const w = await world()
    const r = await runCli([...w.args, '--sequential', '--mx', 'listed.test'])
    expect([r.stdout, r.status]).toEqual(['mx1.nat.test\n', 1])
    const stopped = await runCli([...w.args, '--sequential', '--stop', PRIVATE, '--mx', 'listed.test'])
    expect([stopped.stdout, stopped.status]).toEqual(['', 0])
  })

  it('its own MX name fails to resolve (SERVFAIL, NXDOMAIN, no answer): exit 0, not a deferral to mx1', async () => {
    const w = await world()
    const runs = await Promise.all(['own-servfail.test', 'own-nxdomain.test', 'own-silent.test'].map((domain) =>
      runCli([...w.args.slice(0, -2), '--timeout', '1', '--stop', PUBLIC, '--mx', domain])))
    expect(runs.map((r) => [r.stdout, r.status, r.stderr])).toEqual([['', 0, ''], ['', 0, ''], ['', 0, '']])
    expect(w.primary.connections).toHaveLength(0)
  })

  it('a list of server words keeps the original rule: no local entry (by any identity) makes every entry a candidate', async () => {
    const w = await world()
    const r = await runCli([...w.args, '--sequential', '--stop', PRIVATE, '--stop', '127.20.1.99', '10:mx1.nat.test', '30:mx3.nat.test'])
    expect([r.stdout, r.status]).toEqual(['mx1.nat.test\n', 1])
  })

  it('--stop given twice or more is accepted on the command line (each an identity)', async () => {
    const w = await world()
    const r = await runCli([...w.args, '--json', '--stop', PRIVATE, '--stop', 'mx2.nat.test', '--stop=::1', '10:mx2.nat.test', '20:mx1.nat.test'])
    expect(r.status).toBe(0)
    expect(JSON.parse(r.stdout).stop).toEqual([{given: PRIVATE, addresses: [PRIVATE]}, {given: 'mx2.nat.test', addresses: [PUBLIC]}, {given: '::1', addresses: ['::1']}])
    const bad = await runCli([...w.args, '--stop', PRIVATE, '--stop', 'nx.nat.test', '10:mx1.nat.test'])
    expect([bad.status, bad.stdout]).toEqual([2, ''])
    expect(bad.stderr).toMatch(/^smtpdcheck: cannot resolve --stop "nx\.nat\.test": nxdomain/)
  })
})

describe('the command: lookups in preference order, a bounded number in flight', () => {
  it('3,000 hung names below the local host, typed first: the answer well under a second, few lookups', async () => {
    const hung: Zone = {'mx1.big.test': {A: ['127.20.2.10']}}
    const words: string[] = []
    for (let i = 0; i < 3000; i++) {
      hung[`h${i}.big.test`] = {silent: true}
      words.push(`30:h${i}.big.test`)
    }
    const dns = await keep(startDns(hung, {host: '127.20.2.53'}))
    const primary = await keep(startSmtp({host: '127.20.2.10', greeting: '220 mx1\r\n'}))
    const r = await runCli(['--no-cache', '--timeout', '3', '--dns-server', dns.address, '--port', String(primary.port), '--stop', '127.20.2.20', ...words, '20:127.20.2.20', '10:mx1.big.test'])
    expect([r.stdout, r.status, r.stderr]).toEqual(['mx1.big.test\n', 1, ''])
    expect(r.ms).toBeLessThan(2500) // the hung names have 3 s (--timeout 3); generous for a busy machine
    const asked = new Set(dns.queries.filter((q) => q.name.startsWith('h')).map((q) => q.name))
    expect(asked.size).toBeLessThanOrEqual(64) // at most the bound in flight, never the 3,000
  })
})

// ---- serve: the request's server_address and every --stop are identities.

const started: Array<ReturnType<typeof startTimed>> = []
afterEach(() => {
  for (const {child} of started.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
})

/** `serve --listen inet:127.20.1.1:0 args`; resolves once it listens. */
async function serve(args: string[]) {
  const run = startTimed([BIN, 'serve', '--listen', 'inet:127.20.1.1:0', ...args], {limitMs: 60_000})
  started.push(run)
  let exited = false
  void run.done.then(() => (exited = true))
  for (let i = 0; i < 400 && !exited && !/event=start /.test(run.output.stderr); i++) await sleep(20)
  const port = Number(/event=start .*inet:127\.20\.1\.1:(\d+)/.exec(run.output.stderr)?.[1])
  const ask = async (recipient: string, serverAddress?: string) =>
    (await talk({host: '127.20.1.1', port}, rcpt(recipient, serverAddress === undefined ? {} : {server_address: serverAddress}), {halfClose: true})).text
  return {run, port, ask}
}

describe('serve: identities and the not-found rule', () => {
  it('NAT: private server_address, --stop public address or name: primary → DUNNO; backup with the primary up → DEFER to it', async () => {
    const w = await world(300)
    for (const pub of [PUBLIC, 'mx2.nat.test']) {
      const s = await serve([...w.args, '--stop', pub])
      expect(await s.ask('a@natfirst.test', PRIVATE)).toBe(DUNNO)
      expect(await s.ask('a@nat.test', PRIVATE)).toBe(DEFER('mx1.nat.test'))
      expect(s.run.output.stderr).toMatch(new RegExp(`identities="server_address, --stop ${pub.replaceAll('.', '\\.')}[ ,"]`))
    }
    expect(w.third.connections).toHaveLength(0)
  })

  it('--stop given twice; a request without server_address uses the --stops alone', async () => {
    const w = await world(300)
    const s = await serve([...w.args, '--stop', '127.20.1.99', '--stop', 'mx2.nat.test'])
    expect(s.run.output.stderr).toMatch(/identities="server_address, --stop 127\.20\.1\.99, --stop mx2\.nat\.test \(127\.20\.1\.93\)"/)
    expect(await s.ask('a@nat.test')).toBe(DEFER('mx1.nat.test'))
    expect(await s.ask('a@natfirst.test')).toBe(DUNNO)
  })

  it('1,000 hung MX names below this host: DEFER to the primary well under a second, few lookups', async () => {
    // (1,000: an MX answer of 3,000 records does not fit in one UDP datagram of the fixture.)
    const big: Zone = {'big.test': {MX: [[10, 'mx1.big.test'], [20, 'me.big.test']]}, 'mx1.big.test': {A: ['127.20.8.10']}, 'me.big.test': {A: ['127.20.8.20']}}
    for (let i = 0; i < 1000; i++) {
      big['big.test'].MX!.push([30, `h${i}.big.test`])
      big[`h${i}.big.test`] = {silent: true}
    }
    const dns = await keep(startDns(big, {host: '127.20.8.53'}))
    const primary = await keep(startSmtp({host: '127.20.8.10', greeting: '220 mx1\r\n'}))
    const s = await serve(['--no-cache', '--dns-server', dns.address, '--port', String(primary.port), '--timeout', '3'])
    const t0 = performance.now()
    expect(await s.ask('a@big.test', '127.20.8.20')).toBe(DEFER('mx1.big.test'))
    expect(performance.now() - t0).toBeLessThan(1500)
    const asked = new Set(dns.queries.filter((q) => q.name.startsWith('h')).map((q) => q.name))
    expect(asked.size).toBeLessThanOrEqual(64)
  })

  it('not listed, and own name SERVFAIL: DUNNO, logged with the reason; nothing probed', async () => {
    const w = await world()
    const s = await serve(w.args)
    expect(await s.ask('a@listed.test', PRIVATE)).toBe(DUNNO)
    expect(await s.ask('a@own-servfail.test', PUBLIC)).toBe(DUNNO)
    for (let i = 0; i < 100 && (s.run.output.stderr.match(/decision=/g) ?? []).length < 2; i++) await sleep(20)
    const decisions = s.run.output.stderr.split('\n').filter((l) => l.includes('decision='))
    expect(decisions).toHaveLength(2)
    for (const line of decisions) expect(line).toMatch(/decision=dunno .*note="local host not among the MX/)
    expect(w.primary.connections).toHaveLength(0)
    expect(w.third.connections).toHaveLength(0)
  })
})
