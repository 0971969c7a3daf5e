// Interop (issue 12): the Exim ${readsocket} recipe of the man page (contrib/exim-serve.conf) against `smtpdcheck serve`, run
// for real. A private Exim daemon on 127.0.20.36 is a secondary MX whose RCPT ACL asks serve
// (fixtures/interop/exim-policy.conf; the ACL statement is contrib/exim-serve.conf). serve asks
// a DNS fixture on 127.0.20.1 (--dns-server): example.test's MX records are 10
// mx1.example.test (127.0.20.37, a fixture primary) and 20 mx2.example.test (127.0.20.36,
// Exim itself); best.test has them the other way round. An SMTP client talks to Exim up to RCPT.
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {cannotRun, EXIM, startExim} from '../../fixtures/interop/servers.js'
import {contrib} from '../../fixtures/recipes.js'
import {startMxWorld} from '../serve-harness.js'
import {rcptReply} from './smtp-client.js'

const SECONDARY = '127.0.20.36'
const PRIMARY = '127.0.20.37'
const skip = cannotRun(EXIM, {root: true, user: 'Debian-exim'})
if (skip) console.warn(`interop/exim-policy skipped: ${skip}`)

/**
 * The man page's ACL statement for the policy server (contrib/exim-serve.conf, what
 * `smtpdcheck --print-recipe exim-serve` prints; test/recipes.test.ts holds the copies
 * equal), word for word but for the server's address: serve listens on 127.0.20.1.
 */
function manRecipe(port: number): string {
  const recipe = contrib('exim-serve.conf')
  if (!recipe.includes('inet:127.0.0.1:10040')) throw new Error('contrib/exim-serve.conf does not ask inet:127.0.0.1:10040')
  return recipe.replace('inet:127.0.0.1:10040', `inet:127.0.20.1:${port}`).trimEnd()
}

describe.skipIf(skip !== undefined)(`Exim asking smtpdcheck serve through \${readsocket}${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let world: Awaited<ReturnType<typeof startMxWorld>>
  let primary: Awaited<ReturnType<typeof startMxWorld>>['primary']
  let serve: Awaited<ReturnType<typeof startMxWorld>>['serve']
  let exim: Awaited<ReturnType<typeof startExim>>
  beforeAll(async () => {
    world = await startMxWorld(PRIMARY, SECONDARY)
    ;({primary, serve} = world)
    const {port} = serve
    exim = await startExim(SECONDARY, {template: 'exim-policy.conf', values: {RECIPE: manRecipe(port)}})
  }, 30_000)
  afterAll(async () => {
    await exim?.close()
    await world?.close()
  })

  it('primary up: RCPT gets 451 4.7.1 naming the primary (Exim defers with 451)', async () => {
    expect(await rcptReply(exim, 'user@example.test')).toBe('451 4.7.1 Please use server mx1.example.test')
    expect(primary.connections.length).toBeGreaterThan(0)
  })

  it('Exim is the best MX (server_address is its own address): 250, nothing probed', async () => {
    const probes = primary.connections.length
    expect(await rcptReply(exim, 'user@best.test')).toMatch(/^250 /)
    expect(primary.connections.length).toBe(probes)
  })

  it('primary down: 250', async () => {
    await primary.close()
    expect(await rcptReply(exim, 'user@example.test')).toMatch(/^250 /)
    expect(serve.output.stderr).toMatch(/domain=example\.test decision=dunno/)
    expect(serve.output.stderr).not.toMatch(/warning/)
  })
})
