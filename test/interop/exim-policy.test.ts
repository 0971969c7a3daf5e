// Interop (issue 12): the README's Exim ${readsocket} recipe against `smtpdcheck serve`, run
// for real. A private Exim daemon on 127.0.20.36 is a secondary MX whose RCPT ACL asks serve
// (fixtures/interop/exim-policy.conf; the ACL statement is read from README.md). serve asks
// a DNS fixture on 127.0.20.1 (--dns-server): example.test's MX records are 10
// mx1.example.test (127.0.20.37, a fixture primary) and 20 mx2.example.test (127.0.20.36,
// Exim itself); best.test has them the other way round. An SMTP client talks to Exim up to RCPT.
import {readFileSync} from 'node:fs'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {cannotRun, EXIM, startExim} from '../../fixtures/interop/servers.js'
import {startMxWorld} from '../serve-harness.js'
import {rcptReply} from './smtp-client.js'

const SECONDARY = '127.0.20.36'
const PRIMARY = '127.0.20.37'
const skip = cannotRun(EXIM, {root: true, user: 'Debian-exim'})
if (skip) console.warn(`interop/exim-policy skipped: ${skip}`)

/** The README's ACL statement for the policy server, word for word; only the port is serve's. */
function readmeRecipe(port: number): string {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
  const section = readme.slice(readme.indexOf('## Use with Exim (policy server)'))
  const block = /RCPT ACL[^\n]*\n\n((?: {4}[^\n]*\n)+)/.exec(section)
  if (!block) throw new Error('README: no RCPT ACL block in "Use with Exim (policy server)"')
  const recipe = block[1].replace(/^ {4}/gm, '').trimEnd()
  if (!recipe.includes('inet:127.0.0.1:10040')) throw new Error('README: the recipe does not ask inet:127.0.0.1:10040')
  return recipe.replace('inet:127.0.0.1:10040', `inet:127.0.20.1:${port}`)
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
    exim = await startExim(SECONDARY, {template: 'exim-policy.conf', values: {RECIPE: readmeRecipe(port)}})
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
