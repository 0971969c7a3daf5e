// Interop (issue 12): the README's Exim ${readsocket} recipe against `smtpdcheck serve`, run
// for real. A private Exim daemon on 127.0.20.36 is a secondary MX whose RCPT ACL asks serve
// (fixtures/interop/exim-policy.conf; the ACL statement is read from README.md). serve asks
// a DNS fixture on 127.0.20.1 (--dns-server): example.test's MX records are 10
// mx1.example.test (127.0.20.37, a fixture primary) and 20 mx2.example.test (127.0.20.36,
// Exim itself); best.test has them the other way round. An SMTP client talks to Exim up to RCPT.
import {readFileSync} from 'node:fs'
import {setTimeout as sleep} from 'node:timers/promises'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {startDns} from '../../fixtures/dns.js'
import {cannotRun, EXIM, startExim} from '../../fixtures/interop/servers.js'
import {startSmtp} from '../../fixtures/smtp.js'
import {startTimed} from '../../fixtures/spawn.js'
import {BIN} from '../cli.js'
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
  let dns: Awaited<ReturnType<typeof startDns>>
  let primary: Awaited<ReturnType<typeof startSmtp>>
  let exim: Awaited<ReturnType<typeof startExim>>
  let serve: ReturnType<typeof startTimed>
  beforeAll(async () => {
    dns = await startDns({
      'example.test': {MX: [[10, 'mx1.example.test'], [20, 'mx2.example.test']]},
      'best.test': {MX: [[10, 'mx2.example.test'], [20, 'mx1.example.test']]},
      'mx1.example.test': {A: [PRIMARY]},
      'mx2.example.test': {A: [SECONDARY]},
    }, {host: '127.0.20.1'})
    primary = await startSmtp({host: PRIMARY, greeting: '220 primary.test ESMTP\r\n'})
    serve = startTimed([BIN, 'serve', '--listen', 'inet:127.0.20.1:0', '--dns-server', dns.address, '--port', String(primary.port), '--no-cache'], {limitMs: 120_000})
    for (let i = 0; i < 250 && !/listening on inet:/.test(serve.output.stderr); i++) await sleep(20)
    const port = Number(/listening on inet:127\.0\.20\.1:(\d+)/.exec(serve.output.stderr)?.[1])
    exim = await startExim(SECONDARY, {template: 'exim-policy.conf', values: {RECIPE: readmeRecipe(port)}})
  }, 30_000)
  afterAll(async () => {
    await exim?.close()
    serve?.child.kill('SIGTERM')
    await serve?.done
    await primary?.close()
    await dns?.close()
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
