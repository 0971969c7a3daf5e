// Interop (issues 7, 11): the README's Exim recipe, run for real. A private Exim daemon is a
// secondary MX on 127.0.0.36 whose RCPT ACL runs `smtpdcheck --stop $received_ip_address
// --mx $domain` (fixtures/interop/exim-secondary.conf; the ACL statements are read from
// README.md). Exim runs in a private mount namespace whose /etc/resolv.conf names a dnsmasq
// fixture on 127.0.0.38:53 (the host's resolv.conf is untouched), so smtpdcheck's MX and
// address lookups go there: example.test's MX records are 10 mx1.example.test (127.0.0.37,
// a fixture primary) and 20 mx2.example.test (127.0.0.36, Exim itself).
// An SMTP client talks to Exim up to RCPT. smtpdcheck is installed as README's "Install" says
// (fixtures/install.js) into a 0755 prefix: Exim's user runs that, never the checkout (which
// may sit in a 0700 directory). A second Exim (127.0.15.36) runs the same recipe with a fake
// SMTPDCHECK that crashes (exit 1, a stack trace on stdout): the recipient is not deferred.
import {chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {cannotRun, DNSMASQ, EXIM, startDnsmasq, startExim} from '../../fixtures/interop/servers.js'
import {installFromReadme} from '../../fixtures/install.js'
import {startSmtp, until} from '../../fixtures/smtp.js'
import {rcptReply} from './smtp-client.js'

const SECONDARY = '127.0.0.36'
const PRIMARY = '127.0.0.37'
const RESOLVER = '127.0.0.38'
const skip = cannotRun(EXIM, {root: true, user: 'Debian-exim', mountNamespace: true}) ?? cannotRun(DNSMASQ)
if (skip) console.warn(`interop/exim-secondary skipped: ${skip}`)

/**
 * The README's Exim ACL statements, word for word: the indented block after "In the RCPT
 * ACL" in "Use with Exim", with the README's 4-space code indentation removed.
 */
function readmeRecipe(): string {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
  const section = readme.slice(readme.indexOf('## Use with Exim'))
  const block = /In the RCPT ACL[^\n]*\n\n((?: {4}[^\n]*\n)+)/.exec(section)
  if (!block) throw new Error('README: no Exim RCPT ACL block in "Use with Exim"')
  return block[1].replace(/^ {4}/gm, '').trimEnd()
}

describe.skipIf(skip !== undefined)(`Exim as a secondary MX running smtpdcheck${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let dns: Awaited<ReturnType<typeof startDnsmasq>>
  let primary: Awaited<ReturnType<typeof startSmtp>>
  let exim: Awaited<ReturnType<typeof startExim>>
  let installed: Awaited<ReturnType<typeof installFromReadme>>
  beforeAll(async () => {
    installed = await installFromReadme()
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
    primary = await startSmtp({host: PRIMARY, greeting: '220 primary.test ESMTP\r\n'})
    exim = await startExim(SECONDARY, {
      template: 'exim-secondary.conf',
      values: {NODE: process.execPath, BIN: join(installed.packageDir, 'bin', 'run.js'), PRIMARY_PORT: primary.port, RECIPE: readmeRecipe()},
      resolvConf: `nameserver ${RESOLVER}\noptions timeout:1 attempts:1\n`,
    })
  }, 300_000)
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

  it('the recipe is the README\'s, one command without a shell wrapper', () => {
    const recipe = readmeRecipe()
    expect(recipe).toContain('${run{SMTPDCHECK --stop $received_ip_address --mx $domain}{}{$value}}')
    expect(recipe).toContain('{match{$acl_m_smtpdcheck}{')
    expect(recipe).not.toMatch(/\/bin\/sh|dnsdb/)
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
    // The template's command is `@NODE@ @BIN@ --port … --cache-file …`: here `/bin/sh crash.sh …`.
    exim = await startExim('127.0.15.36', {template: 'exim-secondary.conf', values: {NODE: '/bin/sh', BIN: join(dir, 'crash.sh'), PRIMARY_PORT: 1, RECIPE: readmeRecipe()}})
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
