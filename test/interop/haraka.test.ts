// Interop (issue 22): a real Haraka (the pinned devDependency) as a secondary MX on loopback,
// with haraka-plugin-smtpdcheck installed from its packed tarball by the plugin README's
// Install recipe, word for word but for the install directory and the tarballs. A loopback
// DNS server gives the MX records; the primary is a loopback SMTP server on the same port.
// Everything is on 127.60.2.x; Haraka runs in its own process group, killed afterwards.
import {execFile, spawn, type ChildProcess} from 'node:child_process'
import {appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {delimiter, join} from 'node:path'
import {promisify} from 'node:util'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {npmEnv, packTarballs, ROOT} from '../../fixtures/consumer.js'
import {startDns} from '../../fixtures/dns.js'
import {startSmtp, until} from '../../fixtures/smtp.js'
import {dialogue} from './smtp-client.js'

const exec = promisify(execFile)
const HARAKA_BIN = join(ROOT, 'node_modules', 'Haraka', 'bin', 'haraka')
const PLUGIN_README = join(ROOT, 'haraka-plugin-smtpdcheck', 'README.md')
const PRIMARY = '127.60.2.1'
const SECONDARY = '127.60.2.2' // Haraka: mx2.example.org

let dir: string
let harakaDir: string
let env: NodeJS.ProcessEnv
let haraka: ChildProcess | undefined
let log = ''
let primary: Awaited<ReturnType<typeof startSmtp>> | undefined
let dns: Awaited<ReturnType<typeof startDns>> | undefined

/** The shell blocks of the plugin README's "## Install" section, as written. */
function installRecipe(): string[] {
  const readme = readFileSync(PLUGIN_README, 'utf8')
  const start = readme.indexOf('\n## Install\n')
  const section = readme.slice(start, readme.indexOf('\n## ', start + 1))
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1])
}

/** The recipe with this test's install directory and tarballs; each replaced text must be there. */
function localized(block: string, tarballs: {library: string; plugin: string}): string {
  const replacements: Array<[string, string]> = [
    ['/etc/haraka', harakaDir],
    ['npm install haraka-plugin-smtpdcheck', `npm install ${tarballs.library} ${tarballs.plugin}`],
  ]
  let text = block
  for (const [from, to] of replacements) if (text.includes(from)) text = text.replaceAll(from, to)
  return text
}

/** RCPT TO:<rcpt> through Haraka: the RCPT reply (greeting, EHLO, MAIL, RCPT, QUIT). */
async function rcpt(address: string, mail = 'MAIL FROM:<sender@client.test>'): Promise<string> {
  const port = primary!.port
  const replies = await dialogue(SECONDARY, port, ['EHLO client.test', mail, `RCPT TO:<${address}>`, 'QUIT'])
  expect(replies.slice(0, 3).map((r) => r.slice(0, 3))).toEqual(['220', '250', '250'])
  return replies[3]
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'haraka-interop-')) // a name without "smtpdcheck": the log check below looks for it
  harakaDir = join(dir, 'haraka')
  env = {...npmEnv(dir), PATH: [join(ROOT, 'node_modules', '.bin'), process.env.PATH].join(delimiter), PAGER: 'cat'}
  await exec(process.execPath, [HARAKA_BIN, '-i', harakaDir], {env, timeout: 30_000})
  const tarballs = await packTarballs(dir)
  const [install] = installRecipe()
  expect(install).toContain('npm install haraka-plugin-smtpdcheck')
  expect(install).toContain('cd /etc/haraka')
  await exec('bash', ['-ec', localized(install, tarballs)], {cwd: dir, env, timeout: 120_000})

  dns = await startDns(
    {
      'example.org': {MX: [[10, 'mx1.example.org'], [20, 'mx2.example.org']]},
      'example.net': {MX: [[10, 'mx2.example.org'], [20, 'mx1.example.org']]},
      'broken.example': {servfail: true},
      'hang.example': {silent: true},
      // NAT: the MX records name this host by a public address Haraka does not listen on.
      'nat.example': {MX: [[10, 'mx1.example.org'], [20, 'mx2-public.example']]},
      'mx2-public.example': {A: ['127.60.2.22']},
      // An internationalised domain, configured in its ASCII form (Haraka's ini reads no other).
      'xn--bcher-kva.example': {MX: [[10, 'mx1.example.org'], [20, 'mx2.example.org']]},
      'mx1.example.org': {A: [PRIMARY]},
      'mx2.example.org': {A: [SECONDARY]},
    },
    {host: '127.60.2.53'},
  )
  primary = await startSmtp({host: PRIMARY, greeting: '220 mx1.example.org ESMTP\r\n'})
  // Test-only settings: loopback addresses and ports; one process (nodes=0); the client's
  // rDNS name given by a local plugin (Haraka would ask the system resolver); no plugin that
  // looks names up or queues; the recipients accepted by rcpt_to.in_host_list.
  const config = join(harakaDir, 'config')
  writeFileSync(join(config, 'smtp.ini'), `listen=${SECONDARY}:${primary.port}\npublic_ip=${SECONDARY}\nnodes=0\n`)
  writeFileSync(join(config, 'me'), 'mx2.example.org\n')
  writeFileSync(join(config, 'host_list'), 'example.org\nexample.net\nbroken.example\nhang.example\nnat.example\nxn--bcher-kva.example\n')
  writeFileSync(join(harakaDir, 'plugins', 'loopback_rdns.js'), "exports.hook_lookup_rdns = (next) => next(OK, 'localhost')\n")
  const plugins = readFileSync(join(config, 'plugins'), 'utf8').split('\n').filter((line) => !/^(mail_from\.is_resolvable|queue\/)/.test(line))
  writeFileSync(join(config, 'plugins'), ['loopback_rdns', ...plugins].join('\n'))
  const ini = join(config, 'smtpdcheck.ini')
  const settings = readFileSync(ini, 'utf8')
    .replace(/^;dns_server=.*$/m, `dns_server=127.60.2.53:${dns.port}`)
    .replace(/^port=25$/m, `port=${primary.port}`)
    .replace(/^timeout=10$/m, 'timeout=3')
    .replace(/^positive_ttl=30$/m, 'positive_ttl=0') // the primary's going down is seen at once
    .replace(/^;identities\[\]=$/m, 'identities[]=mx2-public.example') // this host's public name (NAT)
  writeFileSync(ini, settings)
  appendFileSync(ini, 'example.net\nbroken.example\nhang.example\nnat.example\nXN--BCHER-KVA.example.\n')

  haraka = spawn(process.execPath, [HARAKA_BIN, '-c', harakaDir], {cwd: harakaDir, env, detached: true, stdio: ['ignore', 'pipe', 'pipe']})
  haraka.stdout!.on('data', (d) => (log += d))
  haraka.stderr!.on('data', (d) => (log += d))
  await until(() => log.includes(`Listening on ${SECONDARY}:${primary!.port}`) || haraka!.exitCode !== null, 30_000)
  expect(haraka.exitCode, log).toBe(null)
}, 180_000)

afterAll(async () => {
  if (haraka?.pid !== undefined && haraka.exitCode === null) {
    const ended = new Promise((resolve) => haraka!.once('exit', resolve))
    process.kill(-haraka.pid, 'SIGKILL')
    await ended
  }
  await primary?.close()
  await dns?.close()
  if (dir) rmSync(dir, {recursive: true, force: true})
})

describe('Haraka as a secondary MX with haraka-plugin-smtpdcheck', () => {
  it('RCPT gets 450 naming the primary while it is up', async () => {
    expect(await rcpt('user@example.org')).toBe('450 Please use server mx1.example.org')
    expect(primary!.connections.length).toBeGreaterThan(0)
  })

  it('behind NAT: the configured public identity finds this host among the MX, so the primary is named', async () => {
    expect(await rcpt('user@nat.example')).toBe('450 Please use server mx1.example.org')
  })

  it('an internationalised domain (configured XN--BCHER-KVA.example.) is checked for a recipient in either form: 450 naming the primary', async () => {
    expect(await rcpt('user@xn--bcher-kva.example')).toBe('450 Please use server mx1.example.org')
    expect(await rcpt('user@Bücher.example', 'MAIL FROM:<sender@client.test> SMTPUTF8')).toBe('450 Please use server mx1.example.org')
  })

  it('RCPT gets 250 when this host is the best MX', async () => {
    expect(await rcpt('user@example.net')).toMatch(/^250 /)
    expect(log).toMatch(/\[smtpdcheck\] domain="example\.net" decision=accept reason="no more preferred MX"/)
  })

  it('fails open: an MX lookup that fails lets the recipient through, logged as a warning', async () => {
    expect(await rcpt('user@broken.example')).toMatch(/^250 /)
    expect(log).toMatch(/\[WARN\].*\[smtpdcheck\] domain="broken\.example" decision=accept reason="fail open: FatalError: .*broken\.example/)
  })

  it('fails open on a timeout: an MX lookup that never gets an answer lets the recipient through within the timeout (3 s)', async () => {
    const started = Date.now()
    expect(await rcpt('user@hang.example')).toMatch(/^250 /)
    expect(Date.now() - started).toBeLessThan(10_000)
    expect(log).toMatch(/\[WARN\].*\[smtpdcheck\] domain="hang\.example" decision=accept reason="fail open: /)
  })

  it('RCPT gets 250 once the primary is down', async () => {
    await primary!.close()
    expect(await rcpt('user@example.org')).toMatch(/^250 /)
    expect(log).toMatch(/\[smtpdcheck\] domain="example\.org" decision=accept reason="no more preferred MX is up \(1 tried\)"/)
  })

  it("Haraka's log shows no plugin error", () => {
    expect(log).toMatch(/\[plugins\] loading smtpdcheck/)
    const trouble = log.split('\n').filter((line) => /\[(ERROR|CRIT|ALERT|EMERG)\]/.test(line) && /smtpdcheck|plugin/i.test(line))
    expect(trouble).toEqual([])
  })

  it('haraka -h smtpdcheck shows the plugin README (the recipe\'s help lines)', async () => {
    const [, help] = installRecipe()
    expect(help).toContain('haraka -c /etc/haraka -h smtpdcheck')
    const shown = await exec('bash', ['-ec', localized(help, {library: '', plugin: ''})], {cwd: harakaDir, env, timeout: 30_000})
    expect(shown.stdout).toBe(readFileSync(PLUGIN_README, 'utf8'))
  })
})
