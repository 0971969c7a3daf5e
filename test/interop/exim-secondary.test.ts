// Interop (issues 7, 11, 19): the README's Exim recipe (contrib/exim.conf), run word for word
// against the real Exim, with smtpdcheck installed where npm puts it: under /usr (Debian's
// npm) and under /usr/local (npm's default). A private Exim daemon is a secondary MX whose
// RCPT ACL is the recipe (fixtures/interop/exim-secondary.conf: its MAIN and RECIPE, read
// from README.md). Exim runs in a private mount namespace whose /etc/resolv.conf names a
// dnsmasq fixture on port 53, whose PREFIX holds the package installed by the README's
// install lines (fixtures/install.js: an overlay; the real /usr and /usr/local never change)
// and whose /var/cache is an empty tmpfs where the README's `install -d` makes the cache
// directory. example.test's MX records are 10 mx1.example.test (a fixture primary on port 25,
// as a real MX: the recipe names no port) and 20 mx2.example.test (Exim itself). An SMTP
// client talks to Exim up to RCPT. A second Exim runs the same ACL with a fake SMTPDCHECK
// that crashes (exit 1, a stack trace on stdout): the recipient is not deferred.
import {chmodSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {cannotRun, DNSMASQ, EXIM, startDnsmasq, startExim} from '../../fixtures/interop/servers.js'
import {cannotOverlay, installFromReadme} from '../../fixtures/install.js'
import {eximRecipe, readmeBlocks} from '../../fixtures/recipes.js'
import {startSmtp, until} from '../../fixtures/smtp.js'
import {rcptReply} from './smtp-client.js'

const skip = cannotRun(EXIM, {root: true, user: 'Debian-exim', mountNamespace: true}) ?? cannotRun(DNSMASQ) ?? cannotOverlay()
if (skip) console.warn(`interop/exim-secondary skipped: ${skip}`)

/** The README's Exim block is contrib/exim.conf; its two parts go where the conf says. */
function readmeRecipe(): {main: string; acl: string} {
  const [block] = readmeBlocks('Use with Exim')
  const recipe = eximRecipe()
  if (block !== recipe.main + recipe.acl) throw new Error('README: the Exim block is not contrib/exim.conf')
  return recipe
}

/** The README's command that makes the cache directory for Exim's user, word for word. */
const cacheDirectory = () => readmeBlocks('A cache directory for the mail server')[0]

describe.skipIf(skip !== undefined).each([
  {prefix: '/usr', net: '127.30.36'},
  {prefix: '/usr/local', net: '127.30.37'},
] as const)(`Exim as a secondary MX running smtpdcheck installed under $prefix${skip ? ` (skipped: ${skip})` : ''}`, ({prefix, net}) => {
  const SECONDARY = `${net}.36`
  const PRIMARY = `${net}.37`
  const RESOLVER = `${net}.38`
  let dns: Awaited<ReturnType<typeof startDnsmasq>>
  let primary: Awaited<ReturnType<typeof startSmtp>>
  let exim: Awaited<ReturnType<typeof startExim>>
  let installed: Awaited<ReturnType<typeof installFromReadme>>
  beforeAll(async () => {
    installed = await installFromReadme({prefix})
    // best.test: Exim is the most preferred MX. nomx.test: NXDOMAIN. plain.test: an address
    // (the primary's), no MX: the implicit MX. junk.test: an exchange smtpdcheck skips, then
    // Exim. broken.example: outside the fixture's zone, no upstream: dnsmasq refuses it.
    dns = await startDnsmasq({
      host: RESOLVER,
      port: 53,
      hosts: [`${PRIMARY} mx1.example.test`, `${SECONDARY} mx2.example.test`, `${PRIMARY} plain.test`],
      options: ['example.test,mx1.example.test,10', 'example.test,mx2.example.test,20', 'best.test,mx2.example.test,10',
        'best.test,mx1.example.test,20', 'junk.test,bad_name.test,10', 'junk.test,mx2.example.test,20'].map((mx) => `--mx-host=${mx}`),
    })
    primary = await startSmtp({host: PRIMARY, port: 25, greeting: '220 primary.test ESMTP\r\n'})
    const {main, acl} = readmeRecipe()
    exim = await startExim(SECONDARY, {
      template: 'exim-secondary.conf',
      values: {MAIN: main, RECIPE: acl},
      resolvConf: `nameserver ${RESOLVER}\noptions timeout:1 attempts:1\n`,
      setup: `${installed.setup} && ${cacheDirectory().trimEnd()}`, // sh reads its \⏎ as the README's reader's shell does
    })
  }, 600_000)
  afterAll(async () => {
    await exim?.close()
    await primary?.close()
    await dns?.close()
    installed?.remove() // a large tree (npm ci's node_modules): more than the default 20 s under a loaded full run
  }, 120_000)

  it('primary up: RCPT is deferred (4xx) naming the primary, which smtpdcheck probed', async () => {
    const reply = await rcptReply(exim, 'user@example.test')
    expect(reply).toMatch(/^4\d\d Please use server mx1\.example\.test$/)
    await until(() => primary.sent().some((text) => text.includes('QUIT')), 5000)
  })

  it('Exim is the most preferred MX (--stop is its own address): accepted, nothing probed', async () => {
    const probes = primary.connections.length
    expect(await rcptReply(exim, 'user@best.test')).toMatch(/^250 /)
    expect(primary.connections.length).toBe(probes)
  })

  it('the recipe is the README\'s, one command without a shell wrapper, no installation path in it', () => {
    const {main, acl} = readmeRecipe()
    expect(acl.replace(/ \\\n\s*/g, ' ')).toContain('${run{SMTPDCHECK --stop $received_ip_address --mx $domain}{}{$value}}')
    expect(acl).toContain('{match{$acl_m_smtpdcheck}{')
    expect(main + acl).not.toMatch(/\/bin\/sh|dnsdb|\/usr\/local\/lib|\/usr\/lib/)
  })

  it('no MX record (an address only): the implicit MX is the domain itself, not this host → accepted, nothing probed (SPEC §10: the local host must be found to defer)', async () => {
    const probes = primary.connections.length
    expect(await rcptReply(exim, 'user@plain.test')).toMatch(/^250 /)
    expect(primary.connections.length).toBe(probes)
  })

  it('NXDOMAIN: accepted, smtpdcheck having exited 0', async () => {
    const mark = exim.log().length
    expect(await rcptReply(exim, 'user@nomx.test')).toMatch(/^250 /)
    expect(exim.log().slice(mark)).not.toMatch(/smtpdcheck exit/)
  })

  it('an exchange smtpdcheck refuses is skipped, not a failure: accepted, nothing logged', async () => {
    const mark = exim.log().length
    expect(await rcptReply(exim, 'user@junk.test')).toMatch(/^250 /)
    expect(exim.log().slice(mark)).not.toMatch(/smtpdcheck exit/)
  })

  it('a DNS failure (exit 2) does not defer: RCPT is accepted and the failure logged, naming the domain', async () => {
    const mark = exim.log().length
    expect(await rcptReply(exim, 'user@broken.example')).toMatch(/^250 /)
    await until(() => /smtpdcheck exit 2, recipient not deferred: smtpdcheck: cannot look up the MX records of "broken\.example"/.test(exim.log().slice(mark)), 5000)
  })

  it('primary down (refused): RCPT is accepted, smtpdcheck having exited 0', async () => {
    await primary.close()
    const mark = exim.log().length
    expect(await rcptReply(exim, 'user@example.test')).toMatch(/^250 /)
    expect(exim.log().slice(mark)).not.toMatch(/smtpdcheck exit/)
  })

  it('a domain it is not secondary for: refused (550)', async () => {
    expect(await rcptReply(exim, 'user@elsewhere.test')).toMatch(/^550 relay not permitted/)
  })
})

/** A stand-in for smtpdcheck whose interpreter crashed: exit 1, a stack trace on stdout and stderr. */
const CRASH = `#!/bin/sh
trace='file:///usr/local/lib/node_modules/smtpdcheck/bin/run.js:12
    throw new Error("boom")
Error: boom
    at run (file:///usr/local/lib/node_modules/smtpdcheck/bin/run.js:12:11)'
printf '%s\\n' "$trace"
printf '%s\\n' "$trace" >&2
exit 1
`

describe.skipIf(skip !== undefined)(`the recipe with a crashing SMTPDCHECK${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let exim: Awaited<ReturnType<typeof startExim>>
  let dir: string
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ux-exim-crash-'))
    chmodSync(dir, 0o755)
    writeFileSync(join(dir, 'crash.sh'), CRASH, {mode: 0o755})
    // The recipe's SMTPDCHECK macro is `… smtpdcheck --cache-file …`: here `/bin/sh crash.sh`.
    exim = await startExim('127.30.38.36', {template: 'exim-secondary.conf', values: {MAIN: `SMTPDCHECK = /bin/sh ${join(dir, 'crash.sh')}`, RECIPE: readmeRecipe().acl}})
  }, 30_000)
  afterAll(async () => {
    await exim?.close()
    rmSync(dir, {recursive: true, force: true})
  })

  it('exit 1 with a stack trace on stdout: accepted, not deferred, and logged', async () => {
    const mark = exim.log().length
    expect(await rcptReply(exim, 'user@example.test')).toMatch(/^250 /)
    await until(() => /smtpdcheck exit 1, recipient not deferred: file:\/\/\//.test(exim.log().slice(mark)), 5000)
  })
})
