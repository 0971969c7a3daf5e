// Interop (issue 12): a private Postfix on 127.0.20.40 is a secondary MX (relay_domains) whose
// smtpd_recipient_restrictions ask `smtpdcheck serve` with the README's main.cf lines
// (contrib/postfix-main.cf; the policy server's address replaced). serve asks a DNS fixture on
// 127.0.20.1 (--dns-server): example.test's MX records are 10 mx1.example.test (127.0.20.41,
// a fixture primary) and 20 mx2.example.test (127.0.20.40, Postfix itself); best.test has
// them the other way round. Nothing is delivered (relay_transport is an error transport and
// the client quits after RCPT). An SMTP client talks to Postfix's smtpd up to RCPT.
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {cannotRun, POSTFIX, startPostfix} from '../../fixtures/interop/servers.js'
import {contrib, readmeBlocks} from '../../fixtures/recipes.js'
import {startMxWorld} from '../serve-harness.js'
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
      main: [
        'relay_domains = example.test best.test',
        'local_recipient_maps =',
        'alias_maps =',
        'smtpd_reject_unlisted_recipient = no',
        'smtpd_relay_restrictions = reject_unauth_destination',
        // The recipe permits mynetworks first; the test's client (127.0.0.1) must not be in it.
        'mynetworks = 192.0.2.1/32',
        readmePolicy(port),
      ].join('\n'),
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
