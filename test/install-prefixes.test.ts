// Issue 19, item 5: the package where npm really puts it — /usr (Debian's npm) and /usr/local
// (npm's default) — and the README's recipes run there word for word. Each prefix is the
// real path, in a private mount namespace whose prefix is an overlay holding what
// `npm install -g` wrote, with an empty tmpfs over /var/cache (fixtures/install.js): the real
// /usr, /usr/local and /var/cache never change. The Exim recipe runs against the real Exim in
// test/interop/exim-secondary.test.ts.
import {execFile} from 'node:child_process'
import {join} from 'node:path'
import {promisify} from 'node:util'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {cannotOverlay, installFromReadme} from '../fixtures/install.js'
import {contrib, readmeBlocks} from '../fixtures/recipes.js'
import {startSmtp} from '../fixtures/smtp.js'

const exec = promisify(execFile)
const skip = cannotOverlay()
if (skip) console.warn(`install-prefixes skipped: ${skip}`)
/** A PATH such as a service manager or an MTA gives: no node_modules/.bin, no checkout. */
const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
const hasAnalyze = await exec('systemd-analyze', ['--version']).then(() => true, () => false)

describe.skipIf(skip !== undefined).each(['/usr', '/usr/local'] as const)(`installed under %s${skip ? ` (skipped: ${skip})` : ''}`, (prefix) => {
  let installed: Awaited<ReturnType<typeof installFromReadme>>
  const env = () => ({PATH: SYSTEM_PATH, HOME: '/root', LANG: 'C.UTF-8'})
  const sh = (script: string, extra: NodeJS.ProcessEnv = {}) => installed.run('sh', ['-c', script], {env: {...env(), ...extra}})
  beforeAll(async () => {
    installed = await installFromReadme({prefix})
  }, 600_000)
  afterAll(() => installed?.remove())

  it(`smtpdcheck is ${prefix}/bin/smtpdcheck, the package ${prefix}/lib/node_modules/smtpdcheck`, async () => {
    const r = await sh('command -v smtpdcheck; readlink -f "$(command -v smtpdcheck)"; smtpdcheck --version')
    expect(r).toMatchObject({status: 0, stderr: ''})
    const [found, real, version] = r.stdout.trim().split('\n')
    expect(found).toBe(`${prefix}/bin/smtpdcheck`)
    expect(real).toBe(`${prefix}/lib/node_modules/smtpdcheck/bin/run.js`)
    expect(version).toMatch(/^smtpdcheck\/\d+\.\d+\.\d+ /)
  })

  it('man smtpdcheck finds the page under the prefix and shows it without a complaint', async () => {
    const r = await sh('man -w smtpdcheck && MANPAGER=cat MANWIDTH=80 man smtpdcheck | head -3', {MANPATH: ''})
    expect(r.stderr).toBe('')
    // man-db finds it beside the command (bin/../man, in the package) or under share/man.
    expect(r.stdout.split('\n')[0]).toMatch(new RegExp(`^${prefix}/(share/man/man1|lib/node_modules/smtpdcheck/man)/smtpdcheck\\.1$`))
    expect(r.stdout).toContain('SMTPDCHECK(1)')
  })

  it.each(['exim', 'exim-serve', 'postfix', 'avenger', 'systemd'])('--print-recipe %s names this installation by absolute path', async (name) => {
    const r = await sh(`smtpdcheck --print-recipe ${name}`)
    expect(r).toMatchObject({status: 0, stderr: ''})
    const script = `${prefix}/lib/node_modules/smtpdcheck/bin/run.js`
    if (['exim', 'avenger', 'systemd'].includes(name)) expect(r.stdout.replace(/ \\\n\s+/g, ' ')).toContain(`${process.execPath} ${script} `)
    else expect(r.stdout).not.toContain('run.js')
  })

  describe.skipIf(!hasAnalyze)('contrib/smtpdcheck.service through systemd-analyze verify', () => {
    const unit = () => join(installed.packageDir, 'contrib', 'smtpdcheck.service')

    it('the unit as shipped (ExecStart=smtpdcheck, found on systemd\'s PATH) passes', async () => {
      expect(await installed.run('systemd-analyze', ['verify', '--man=no', unit()], {env: env()})).toEqual({stdout: '', stderr: '', status: 0})
    })

    it('the unit that --print-recipe systemd prints (absolute paths) passes', async () => {
      const r = await sh('smtpdcheck --print-recipe systemd > "$0/smtpdcheck.service" && systemd-analyze verify --man=no "$0/smtpdcheck.service"'.replaceAll('$0', installed.dir))
      expect(r).toEqual({stdout: '', stderr: '', status: 0})
    })

    it('verify fails where smtpdcheck is not installed (this machine outside the namespace): the check can fail', async () => {
      const copy = join(installed.dir, 'clone', 'contrib', 'smtpdcheck.service')
      const r = await exec('systemd-analyze', ['verify', '--man=no', copy], {env: env()}).then(() => ({ok: true, stderr: ''}), (e: {stderr: string}) => ({ok: false, stderr: e.stderr}))
      expect(r).toMatchObject({ok: false, stderr: expect.stringContaining('smtpdcheck')})
    })
  })

  it('the README\'s `serve` command, word for word, starts and answers a policy request (in a network namespace of its own)', async () => {
    // A private network namespace: 127.0.0.1:10040 is the README's own, and its DNS is
    // unreachable, so the request gets action=DUNNO (fail open) — proof enough it answers.
    const [command] = readmeBlocks('Use with Postfix').filter((block: string) => block.startsWith('smtpdcheck serve'))
    const client = `const s = require('node:net').connect(10040, '127.0.0.1', () => s.end('request=smtpd_access_policy\\nprotocol_state=RCPT\\nrecipient=u@example.org\\nserver_address=127.0.0.1\\n\\n')); s.setEncoding('utf8').on('data', (d) => process.stdout.write(d)).on('error', (e) => (console.error(e.message), process.exit(1)))`
    const script = `ip link set lo up\n${command.trimEnd()} > /dev/null 2>&1 &\nserve=$!\nfor i in $(seq 100); do node -e "require('node:net').connect(10040, '127.0.0.1').on('connect', () => process.exit(0)).on('error', () => process.exit(1))" && break; sleep 0.1; done\nnode -e "$0"\nkill $serve; wait $serve`
    const [cmd, argv] = installed.argv('unshare', ['--net', 'sh', '-c', script, client])
    const {stdout} = await exec(cmd, argv, {env: env(), timeout: 60_000, encoding: 'utf8'})
    expect(stdout).toBe('action=DUNNO\n\n')
  }, 90_000)

  describe('the Mail Avenger recipe, word for word (sh, a defer function as Mail Avenger gives)', () => {
    let primary: Awaited<ReturnType<typeof startSmtp>>
    const PRIMARY = prefix === '/usr' ? '127.30.19.30' : '127.30.19.40'
    const LOCAL = prefix === '/usr' ? '127.30.19.31' : '127.30.19.41'
    beforeAll(async () => {
      // The recipe probes port 25, as on a real MX: the fixture primary listens there.
      primary = await startSmtp({host: PRIMARY, port: 25, greeting: '220 primary ESMTP\r\n'})
    })
    afterAll(async () => primary?.close())
    const recipe = () => readmeBlocks('Use with Mail Avenger')[0]
    const avenger = (mxes: string) => sh(`defer() { echo "defer: $*"; }\n${recipe()}echo "accept"`, {MYIP: LOCAL, RECIP_MXES: mxes})

    it('is contrib/avenger-secondary', () => expect(recipe()).toBe(contrib('avenger-secondary')))

    it('primary up: defer naming it', async () => {
      expect(await avenger(`10:${PRIMARY} 20:${LOCAL}`)).toMatchObject({stdout: `defer: Please use server ${PRIMARY}\naccept\n`, stderr: ''})
    })

    it('this host is the best MX: accept, nothing probed', async () => {
      const probes = primary.connections.length
      expect(await avenger(`10:${LOCAL} 20:${PRIMARY}`)).toMatchObject({stdout: 'accept\n', stderr: ''})
      expect(primary.connections.length).toBe(probes)
    })
  })
})
