// Interop (issue 12): a private Postfix on 127.0.20.40 is a secondary MX (relay_domains) whose
// smtpd_recipient_restrictions ask `smtpdcheck serve` with the README's main.cf lines
// (contrib/postfix-main.cf; the policy server's address replaced). serve asks a DNS fixture on
// 127.0.20.1 (--dns-server): example.test's MX records are 10 mx1.example.test (127.0.20.41,
// a fixture primary) and 20 mx2.example.test (127.0.20.40, Postfix itself); best.test has
// them the other way round. Nothing is delivered (relay_transport is an error transport and
// the client quits after RCPT). An SMTP client talks to Postfix's smtpd up to RCPT.
import {readFileSync} from 'node:fs'
import {setTimeout as sleep} from 'node:timers/promises'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {startDns} from '../../fixtures/dns.js'
import {installFromReadme} from '../../fixtures/install.js'
import {cannotRun, POSTFIX, startPostfix} from '../../fixtures/interop/servers.js'
import {contrib, readmeBlocks} from '../../fixtures/recipes.js'
import {startSmtp} from '../../fixtures/smtp.js'
import {mxZone, startMxWorld, startServe} from '../serve-harness.js'
import {rcptReply} from './smtp-client.js'

const SECONDARY = '127.0.20.40'
const PRIMARY = '127.0.20.41'
const skip = cannotRun(POSTFIX, {root: true, user: 'postfix'})
if (skip) console.warn(`interop/postfix-policy skipped: ${skip}`)

/**
 * The README's main.cf lines (contrib/postfix-main.cf), word for word but for the policy
 * server's address: serve listens on 127.0.20.1 at a port of its own.
 */
function readmePolicy(port: number): string {
  const block = readmeBlocks('Use with Postfix').find((text: string) => text.includes('check_policy_service'))
  if (!block) throw new Error('README: no check_policy_service block in "Use with Postfix"')
  if (block !== contrib('postfix-main.cf')) throw new Error('README: the Postfix block is not contrib/postfix-main.cf')
  if (!block.includes('inet:127.0.0.1:10040')) throw new Error('README: the recipe does not ask inet:127.0.0.1:10040')
  return block.replace('inet:127.0.0.1:10040', `inet:127.0.20.1:${port}`).trimEnd()
}

/**
 * main.cf of a secondary MX for example.test and best.test whose smtpd_recipient_restrictions
 * are `restrictions` (a main.cf fragment, as readmePolicy gives it). The recipe permits
 * mynetworks first: the test's client (127.0.0.1) must not be in it.
 */
function secondaryMain(restrictions: string): string {
  return [
    'relay_domains = example.test best.test',
    'local_recipient_maps =',
    'alias_maps =',
    'smtpd_reject_unlisted_recipient = no',
    'smtpd_relay_restrictions = reject_unauth_destination',
    'mynetworks = 192.0.2.1/32',
    restrictions,
  ].join('\n')
}

describe.skipIf(skip !== undefined)(`Postfix asking smtpdcheck serve (check_policy_service)${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let world: Awaited<ReturnType<typeof startMxWorld>>
  let primary: Awaited<ReturnType<typeof startMxWorld>>['primary']
  let serve: Awaited<ReturnType<typeof startMxWorld>>['serve']
  let postfix: Awaited<ReturnType<typeof startPostfix>>
  beforeAll(async () => {
    world = await startMxWorld(PRIMARY, SECONDARY)
    ;({primary, serve} = world)
    const {port} = serve
    postfix = await startPostfix(SECONDARY, {
      smtpd: true,
      main: secondaryMain(readmePolicy(port)),
    })
  }, 30_000)
  afterAll(async () => {
    await postfix?.close()
    await world?.close()
  })

  const reply = (rcpt: string) => rcptReply({host: SECONDARY, port: postfix.smtpdPort!}, rcpt)

  it('primary up: RCPT gets 450 4.7.1 naming the primary', async () => {
    expect(await reply('user@example.test')).toBe('450 4.7.1 <user@example.test>: Recipient address rejected: Please use server mx1.example.test')
  })

  it('Postfix is the best MX (its server_address): 250, nothing probed', async () => {
    const probes = primary.connections.length
    expect(await reply('user@best.test')).toMatch(/^250 /)
    expect(primary.connections.length).toBe(probes)
  })

  it('serve reloaded (SIGHUP) between two SMTP transactions: it keeps serving, the second is answered as the first', async () => {
    expect(await reply('first@example.test')).toMatch(/^450 4\.7\.1 .*Please use server mx1\.example\.test$/)
    const reloads = serve.output.stderr.split('event=reload').length
    serve.child.kill('SIGHUP')
    for (let i = 0; i < 100 && serve.output.stderr.split('event=reload').length === reloads; i++) await sleep(20)
    expect(serve.output.stderr.split('event=reload').length).toBe(reloads + 1)
    expect(await reply('second@example.test')).toMatch(/^450 4\.7\.1 .*Please use server mx1\.example\.test$/)
    expect(serve.child.exitCode).toBeNull()
    expect(serve.output.stderr).toMatch(/event=decision request=\d+ domain=example\.test decision=defer server=mx1\.example\.test ms=\d+ cached=no note=available client_address=127\.0\.0\.1 instance=\S+\n/)
  })

  it('a domain it does not relay for: refused by reject_unauth_destination before the policy', async () => {
    expect(await reply('user@elsewhere.test')).toMatch(/^554 .*Relay access denied/)
  })

  it('primary down: 250; no policy warning in Postfix\'s log', async () => {
    await primary.close()
    expect(await reply('user@example.test')).toMatch(/^250 /)
    expect(postfix.log()).not.toMatch(/warning:/) // e.g. "problem talking to server", "connect to …: Connection refused"
    expect(serve.output.stderr).toMatch(/domain=example\.test decision=defer server=mx1\.example\.test/)
    expect(serve.output.stderr).toMatch(/domain=example\.test decision=dunno/)
  })
})

// The same secondary, with serve run by Postfix's spawn(8) per policy connection, the
// protocol on its standard input and output (SMTPD_POLICY_README's form): `serve --stdio`.
describe.skipIf(skip !== undefined)(`Postfix spawning smtpdcheck serve --stdio${skip ? ` (skipped: ${skip})` : ''}`, () => {
  const SPAWN_SECONDARY = '127.0.20.42'
  const SPAWN_PRIMARY = '127.0.20.43'
  let postfix: Awaited<ReturnType<typeof startPostfix>>
  let primary: Awaited<ReturnType<typeof startSmtp>>
  let dns: Awaited<ReturnType<typeof startDns>>
  let installed: Awaited<ReturnType<typeof installFromReadme>> | undefined
  beforeAll(async () => {
    // spawn runs serve as nobody, who cannot read a checkout in a directory only root can
    // read (CI's): the package is installed as the README says, in a directory all can read.
    installed = await installFromReadme()
    primary = await startSmtp({host: SPAWN_PRIMARY, greeting: '220 primary.test ESMTP\r\n'})
    dns = await startDns(mxZone(SPAWN_PRIMARY, SPAWN_SECONDARY), {host: '127.0.20.1'})
    const bin = join(installed.packageDir, 'bin', 'run.js')
    postfix = await startPostfix(SPAWN_SECONDARY, {
      smtpd: true,
      master: `policy unix - n n - 0 spawn user=nobody argv=${process.execPath} ${bin} serve --stdio --dns-server ${dns.address} --port ${primary.port}`,
      main: secondaryMain('smtpd_recipient_restrictions = reject_unauth_destination, check_policy_service { unix:private/policy, timeout=15s, default_action=DUNNO }'),
    })
  }, 300_000)
  afterAll(async () => {
    await postfix?.close()
    await primary?.close()
    await dns?.close()
    installed?.remove()
  }, 120_000)

  const reply = (rcpt: string) => rcptReply({host: SPAWN_SECONDARY, port: postfix.smtpdPort!}, rcpt)

  it('primary up: 450 naming it; Postfix the best MX: 250; primary down: 250 within seconds; no policy warning', async () => {
    expect(await reply('user@example.test')).toBe('450 4.7.1 <user@example.test>: Recipient address rejected: Please use server mx1.example.test')
    expect(await reply('user@best.test')).toMatch(/^250 /)
    await primary.close()
    // The answer of a primary seen up less than 2 s ago may still be served while it is re-probed.
    let after = await reply('other@example.test')
    for (let i = 0; i < 10 && !after.startsWith('250 '); i++) after = await sleep(500).then(() => reply('other@example.test'))
    expect(after).toMatch(/^250 /)
    expect(postfix.log()).not.toMatch(/warning:/)
    // spawn connects stderr to Postfix too: no log line of serve reached it (it would be a
    // malformed reply and a warning above). Its lines go to postlog(1), which reaches this
    // test's maillog_file only when postlog is set-gid postdrop (Debian's is not).
  }, 30_000)
})


// Behind NAT (issue 18): Postfix listens on 127.20.9.92, the "private" address it reports as
// server_address; DNS lists this host as mx2.nat.test = 127.20.9.93, the "public" address,
// which serve learns from --stop. nat.test: 10 mx1 (a fixture primary, greeting after
// 300 ms), 20 mx2 (this host), 30 mx3 (greeting at once: what "every MX is a candidate"
// would name); natbest.test: this host at 10; natother.test does not list this host at all.
const NAT_PRIVATE = '127.20.9.92'
const NAT_PUBLIC = '127.20.9.93'
const NAT_PRIMARY = '127.20.9.41'
const NAT_THIRD = '127.20.9.43'

describe.skipIf(skip !== undefined)(`Postfix behind NAT asking serve --stop <public address>${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let dns: Awaited<ReturnType<typeof startDns>>
  let primary: Awaited<ReturnType<typeof startSmtp>>
  let third: Awaited<ReturnType<typeof startSmtp>>
  let serve: Awaited<ReturnType<typeof startServe>>
  let postfix: Awaited<ReturnType<typeof startPostfix>>
  beforeAll(async () => {
    dns = await startDns({
      'nat.test': {MX: [[10, 'mx1.nat.test'], [20, 'mx2.nat.test'], [30, 'mx3.nat.test']]},
      'natbest.test': {MX: [[10, 'mx2.nat.test'], [20, 'mx1.nat.test']]},
      'natother.test': {MX: [[10, 'mx1.nat.test']]},
      'mx1.nat.test': {A: [NAT_PRIMARY]},
      'mx2.nat.test': {A: [NAT_PUBLIC]},
      'mx3.nat.test': {A: [NAT_THIRD]},
    }, {host: '127.20.9.1'})
    primary = await startSmtp({host: NAT_PRIMARY, greet: (socket) => void setTimeout(() => socket.destroyed || socket.write('220 primary.nat.test ESMTP\r\n'), 300)})
    third = await startSmtp({host: NAT_THIRD, port: primary.port, greeting: '220 mx3.nat.test ESMTP\r\n'})
    serve = await startServe(['--dns-server', dns.address, '--port', String(primary.port), '--no-cache', '--stop', NAT_PUBLIC])
    postfix = await startPostfix(NAT_PRIVATE, {
      smtpd: true,
      main: [
        'relay_domains = nat.test natbest.test natother.test',
        'local_recipient_maps =',
        'alias_maps =',
        'smtpd_reject_unlisted_recipient = no',
        'smtpd_relay_restrictions = reject_unauth_destination',
        // The recipe permits mynetworks first; the test's client (127.0.0.1) must not be in it.
        'mynetworks = 192.0.2.1/32',
        readmePolicy(serve.port),
      ].join('\n'),
    })
  }, 30_000)
  afterAll(async () => {
    await postfix?.close()
    serve?.child.kill('SIGTERM')
    await serve?.done
    await primary?.close()
    await third?.close()
    await dns?.close()
  })

  const reply = (rcpt: string) => rcptReply({host: NAT_PRIVATE, port: postfix.smtpdPort!}, rcpt)

  it('this host is the best MX by its public address: 250, nothing probed', async () => {
    expect(await reply('user@natbest.test')).toMatch(/^250 /)
    expect(primary.connections).toHaveLength(0)
  })

  it('this host is the backup by its public address, the primary up: 450 naming the primary, not the less preferred mx3', async () => {
    expect(await reply('user@nat.test')).toBe('450 4.7.1 <user@nat.test>: Recipient address rejected: Please use server mx1.nat.test')
    expect(third.connections).toHaveLength(0)
  })

  it('a relayed domain whose MX does not list this host: 250, logged as not among the MX', async () => {
    const probes = primary.connections.length
    expect(await reply('user@natother.test')).toMatch(/^250 /)
    expect(primary.connections.length).toBe(probes)
    for (let i = 0; i < 50 && !/domain=natother\.test/.test(serve.output.stderr); i++) await new Promise((r) => setTimeout(r, 20))
    expect(serve.output.stderr).toMatch(/domain=natother\.test decision=dunno .*note="local host not among the MX/)
    expect(postfix.log()).not.toMatch(/warning:/)
  })
})
