// The library (issue 22) as a Node program gets it: the packed tarball installed in a
// temporary project (fixtures/consumer.js), used through `import … from 'smtpdcheck'` only,
// against loopback SMTP servers (fixtures/smtp.js) and a loopback DNS server
// (fixtures/dns.js). The README's example runs as written and type-checks against the
// package's .d.ts with the consumer's `tsc --noEmit`.
import {execFile} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {promisify} from 'node:util'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {consumerProject, ROOT} from '../fixtures/consumer.js'
import {startDns} from '../fixtures/dns.js'
import {startSmtp} from '../fixtures/smtp.js'

const exec = promisify(execFile)
let consumer: Awaited<ReturnType<typeof consumerProject>>

beforeAll(async () => {
  consumer = await consumerProject()
}, 120_000)

afterAll(() => consumer?.remove())

/** The code block of README.md's "## Library" section, as written. */
function readmeExample(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  const section = readme.slice(readme.indexOf('\n## Library\n'))
  const block = /```js\n([\s\S]*?)```/.exec(section)
  if (!block) throw new Error('README: no js block in "## Library"')
  return block[1]
}

/** Run `source` as NAME.mjs in the consumer project; its last stdout line is JSON. */
async function runJson(name: string, source: string, env: Record<string, string> = {}) {
  consumer.write(name, source)
  const r = await consumer.run(name, env)
  expect(r.stderr).toBe('')
  expect(r.status).toBe(0)
  return {...r, json: JSON.parse(r.stdout.trim().split('\n').at(-1)!)}
}

/** A --json document without its times (they differ from run to run). */
function timeless(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(timeless)
  if (value === null || typeof value !== 'object') return value
  return Object.fromEntries(Object.entries(value).filter(([key]) => !/Ms$/.test(key)).map(([key, v]) => [key, timeless(v)]))
}

describe('npm pack', () => {
  it("holds the library's dist and types, not the Haraka plugin's directory; the plugin's tarball holds the plugin", async () => {
    const list = async (tarball: string) => (await exec('tar', ['-tzf', tarball])).stdout.split('\n').filter(Boolean)
    const library = await list(consumer.tarballs.library)
    expect(library).toEqual(expect.arrayContaining(['package/dist/index.js', 'package/dist/index.d.ts', 'package/dist/core/library.d.ts', 'package/bin/run.js', 'package/dist/smtpdcheck.cjs']))
    expect(library.filter((file) => file.includes('haraka'))).toEqual([])
    expect((await list(consumer.tarballs.plugin)).sort()).toEqual(['package/README.md', 'package/config/smtpdcheck.ini', 'package/index.js', 'package/package.json'])
  })
})

describe('import', () => {
  it('has no side effect: no listener, handle, timer, output or exit; only the public names; no deep import', async () => {
    const {json, exitAfterOutputMs} = await runJson(
      'import.mjs',
      `
const write = process.stdout.write.bind(process.stdout)
let writes = 0
process.stdout.write = process.stderr.write = () => ((writes++), true)
process.exit = () => { throw new Error('process.exit') }
const events = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGUSR1', 'SIGPIPE', 'exit', 'beforeExit', 'uncaughtException', 'unhandledRejection', 'warning']
const listeners = () => events.map((e) => process.listenerCount(e)).join()
await new Promise((resolve) => setImmediate(resolve))
const before = {listeners: listeners(), handles: process.getActiveResourcesInfo().sort().join()}
// Every async resource made while the package loads (a timer, even unref'd; a socket), but
// the module loader's own file reads.
const made = []
const {createHook} = await import('node:async_hooks')
const hook = createHook({init: (id, type) => !/^(PROMISE|FSREQPROMISE|FILEHANDLE)/.test(type) && made.push(type)}).enable()
const lib = await import('smtpdcheck')
hook.disable()
await new Promise((resolve) => setImmediate(resolve))
const after = {listeners: listeners(), handles: process.getActiveResourcesInfo().sort().join()}
const deep = await import('smtpdcheck/dist/core/check.js').then(() => 'imported', (error) => error.code)
write(JSON.stringify({names: Object.keys(lib).sort(), before, after, made, writes, deep}) + '\\n')
`,
    )
    expect(json.names).toEqual(['FatalError', 'UsageError', 'check', 'createChecker'])
    expect(json.after).toEqual(json.before)
    expect(json.made).toEqual([])
    expect(json.writes).toBe(0)
    expect(json.deep).toBe('ERR_PACKAGE_PATH_NOT_EXPORTED')
    expect(exitAfterOutputMs).toBeLessThan(2000)
  })
})

describe('against loopback servers and DNS', () => {
  // 127.60.1.1 greets at once, .4 greets after 300 ms, .5 accepts and never greets, nothing
  // listens on .3; this host is .2. All on one port (the probe port).
  let fixtures: Array<{close: () => Promise<void>}> = []
  let env: Record<string, string>
  let up: Awaited<ReturnType<typeof startSmtp>>
  let slow: Awaited<ReturnType<typeof startSmtp>>
  let silent: Awaited<ReturnType<typeof startSmtp>>

  beforeAll(async () => {
    up = await startSmtp({host: '127.60.1.1', greeting: '220 primary ESMTP\r\n'})
    slow = await startSmtp({host: '127.60.1.4', port: up.port, greet: (socket) => void setTimeout(() => socket.writable && socket.write('220 slow ESMTP\r\n'), 300)})
    silent = await startSmtp({host: '127.60.1.5', port: up.port})
    const mx = (primary: string) => ({MX: [[10, primary], [20, 'me.example']] as Array<[number, string]>})
    const dns = await startDns(
      {
        'up.example': mx('mx-up.example'),
        'down.example': mx('mx-down.example'),
        'slow.example': mx('mx-slow.example'),
        'silent.example': mx('mx-silent.example'),
        'hang.example': mx('mx-hang.example'),
        'best.example': {MX: [[10, 'me.example'], [20, 'mx-up.example']]},
        'servfail.example': {servfail: true},
        'me.example': {A: ['127.60.1.2']},
        'mx-up.example': {A: ['127.60.1.1']},
        'mx-down.example': {A: ['127.60.1.3']},
        'mx-slow.example': {A: ['127.60.1.4']},
        'mx-silent.example': {A: ['127.60.1.5']},
        'mx-hang.example': {silent: true},
      },
      {host: '127.60.1.53'},
    )
    fixtures = [up, slow, silent, dns]
    env = {PORT: String(up.port), DNS: `127.60.1.53:${dns.port}`}
  })

  afterAll(async () => {
    for (const fixture of fixtures) await fixture.close()
  })

  it('check(): the server to use or none, why, and the report --json prints', async () => {
    const {json} = await runJson(
      'oneshot.mjs',
      `
import {check} from 'smtpdcheck'
const options = {identities: ['127.60.1.2'], port: Number(process.env.PORT), dnsServer: process.env.DNS, timeout: 5}
const out = {}
for (const domain of ['up.example', 'down.example', 'best.example']) {
  const {server, reason, exitCode, report} = await check({...options, mx: domain})
  out[domain] = {server, reason, exitCode, report}
}
const words = await check({...options, servers: ['10:127.60.1.3', '20:127.60.1.1', '30:127.60.1.2']})
out.words = {server: words.server, reason: words.reason, exitCode: words.exitCode}
// One identity written two ways is one identity (normalised as --stop is).
const same = await check({...options, identities: ['127.60.1.2', '::ffff:127.60.1.2'], servers: ['10:127.60.1.1', '20:127.60.1.2']})
out.same = same.report.selection
// Identities (NAT): the address reached (.9) is not in DNS; the public name is.
const nat = {...options, mx: 'up.example'}
out.natFound = (await check({...nat, identities: ['127.60.1.9', 'me.example']})).server
const notFound = await check({...nat, identities: ['127.60.1.9']})
out.natNotFound = {server: notFound.server, reason: notFound.reason}
// cacheFile: the second run skips the address the first found down (--negative-ttl 60).
const {mkdtempSync, rmSync} = await import('node:fs')
const cacheDir = mkdtempSync((await import('node:os')).tmpdir() + '/smtpdcheck-cache-')
const cacheFile = cacheDir + '/cache.json'
out.cached = []
for (let run = 0; run < 2; run++) out.cached.push((await check({...options, mx: 'down.example', cacheFile})).report.entries[0].attempts.map((a) => a.outcome))
rmSync(cacheDir, {recursive: true})
console.log(JSON.stringify(out))
`,
      env,
    )
    expect(json['up.example']).toMatchObject({server: 'mx-up.example', reason: 'available', exitCode: 1})
    expect(json['down.example']).toMatchObject({server: null, reason: 'no more preferred MX is up (1 tried)', exitCode: 0})
    expect(json['best.example']).toMatchObject({server: null, reason: 'no more preferred MX', exitCode: 0})
    expect(json.words).toEqual({server: '127.60.1.1', reason: 'available', exitCode: 1})
    expect(json.natFound).toBe('mx-up.example')
    expect(json.natNotFound).toEqual({server: null, reason: 'local host not among the MX (no identity of this host is listed)'})
    expect(json.cached).toEqual([['refused'], ['cached']])
    expect(json.same).toMatchObject({candidates: ['127.60.1.1'], local: ['127.60.1.2']})
    // The report is the command's --json document for the same question.
    for (const domain of ['up.example', 'down.example']) {
      const cli = await exec(process.execPath, [join(ROOT, 'bin/run.js'), '--json', '--no-cache', '--stop', '127.60.1.2', '--port', env.PORT, '--dns-server', env.DNS, '--timeout', '5', '--mx', domain]).catch((error: {stdout: string}) => error)
      expect(timeless(json[domain].report)).toEqual(timeless(JSON.parse(cli.stdout)))
    }
    expect(up.connections.length).toBeGreaterThanOrEqual(3)
  })

  it('check(): UsageError before anything is probed, FatalError for a failed MX lookup, the signal ends a question', async () => {
    const before = up.connections.length
    const {json} = await runJson(
      'errors.mjs',
      `
import {check, UsageError, FatalError} from 'smtpdcheck'
const options = {identities: ['127.60.1.2'], port: Number(process.env.PORT), dnsServer: process.env.DNS, timeout: 5}
const outcome = (promise) => promise.then(
  (verdict) => ({verdict: verdict.server}),
  (error) => ({name: error?.name, usage: error instanceof UsageError, fatal: error instanceof FatalError, kind: error?.kind, message: String(error?.message)}),
)
const out = {
  word: await outcome(check({...options, servers: ['10:127.60.1.1', '20:bad_name']})),
  timeout: await outcome(check({...options, servers: ['127.60.1.1'], timeout: -1})),
  both: await outcome(check({...options, servers: ['127.60.1.1'], mx: 'up.example'})),
  neither: await outcome(check(options)),
  identity: await outcome(check({...options, servers: ['127.60.1.1'], identities: ['10:mx.example']})),
  dnsServer: await outcome(check({...options, servers: ['127.60.1.1'], dnsServer: 'resolver.example'})),
  servfail: await outcome(check({...options, mx: 'servfail.example'})),
}
const aborted = AbortSignal.abort(new Error('given up'))
out.aborted = await outcome(check({...options, mx: 'up.example', signal: aborted}))
const t0 = Date.now()
out.silent = await outcome(check({...options, mx: 'silent.example', signal: AbortSignal.timeout(300)}))
out.silentMs = Date.now() - t0
console.log(JSON.stringify(out))
`,
      env,
    )
    for (const key of ['word', 'timeout', 'both', 'neither', 'identity', 'dnsServer']) expect(json[key], key).toMatchObject({name: 'UsageError', usage: true, fatal: false})
    expect(json.word.message).toBe('bad server "20:bad_name": bad label "bad_name" (letters, digits and inner hyphens only)')
    expect(json.servfail).toMatchObject({name: 'FatalError', fatal: true, kind: 'mx-lookup'})
    expect(json.servfail.message).toContain('servfail.example')
    expect(json.aborted).toMatchObject({name: 'Error', message: 'given up'})
    expect(json.silent).toMatchObject({name: 'TimeoutError'})
    expect(json.silentMs).toBeLessThan(4000)
    // Nothing reached the primary for the questions that were refused or aborted before probing.
    expect(up.connections.length).toBe(before)
    // The silent server's connection was closed when the question ended.
    expect(silent.connections.length).toBeGreaterThan(0)
    expect(silent.connections.every((c) => c.closed)).toBe(true)
  })

  it('createChecker(): one probe shared by concurrent questions, one cache, a signal per question, close() leaves nothing open', async () => {
    const slowBefore = slow.connections.length
    const {json, exitAfterOutputMs} = await runJson(
      'longlived.mjs',
      `
import {createChecker, FatalError} from 'smtpdcheck'
const checker = createChecker({port: Number(process.env.PORT), dnsServer: process.env.DNS, timeout: 5})
const me = {identities: ['127.60.1.2']}
const out = {}
const answers = await Promise.all(Array.from({length: 5}, () => checker.check({...me, mx: 'slow.example'})))
out.concurrent = answers.map((a) => a.server)
out.again = (await checker.check({...me, mx: 'slow.example'})).report.entries[0].attempts.map((a) => a.outcome)
const t0 = Date.now()
out.timedOut = await checker.check({...me, mx: 'silent.example', signal: AbortSignal.timeout(200)}).then(() => 'answered', (error) => error.name)
out.timedOutMs = Date.now() - t0
// In flight at close(): a probe that never gets a greeting, a DNS query that never gets an answer.
const pending = [checker.check({...me, mx: 'silent.example'}), checker.check({...me, mx: 'hang.example'})].map((p) => p.then(() => 'answered', (error) => (error instanceof FatalError ? error.message : String(error))))
await new Promise((resolve) => setTimeout(resolve, 100))
await checker.close()
out.pending = await Promise.all(pending)
out.afterClose = await checker.check({...me, mx: 'up.example'}).then(() => 'answered', (error) => error.message)
console.log(JSON.stringify(out))
`,
      env,
    )
    expect(json.concurrent).toEqual(Array(5).fill('mx-slow.example'))
    expect(slow.connections.length - slowBefore).toBe(1)
    expect(json.again).toEqual(['cached'])
    expect(json.timedOut).toBe('TimeoutError')
    expect(json.timedOutMs).toBeLessThan(4000)
    expect(json.pending).toEqual(['the checker is closed', 'the checker is closed'])
    expect(json.afterClose).toBe('the checker is closed')
    // Nothing left open: the process ends by itself at once (a DNS query left running would
    // hold it for the resolver's own timeouts, 2 × 2 s).
    expect(exitAfterOutputMs).toBeLessThan(2500)
  })
})

describe('README.md "## Library" example', () => {
  it('runs as written: the primary up, then down', async () => {
    const example = readmeExample()
    consumer.write('example.mjs', example)
    const primary = await startSmtp({host: '127.60.0.1', port: 2525, greeting: '220 primary ESMTP\r\n'})
    let r
    try {
      r = await consumer.run('example.mjs')
    } finally {
      await primary.close()
    }
    expect(r).toMatchObject({status: 0, stderr: ''})
    expect(r.stdout.split('\n')).toEqual([
      '127.60.0.1 available',
      '127.60.0.2 127.60.0.1 available',
      '127.60.0.1 accept no more preferred MX',
      'usage error: bad server "10:mx1..example.org": empty label in host name',
      '',
    ])
    const down = await consumer.run('example.mjs')
    expect(down).toMatchObject({status: 0, stderr: ''})
    expect(down.stdout.split('\n').slice(0, 2)).toEqual(['null no more preferred MX is up (1 tried)', '127.60.0.2 accept no more preferred MX is up (1 tried)'])
  })

  it("type-checks against the package's .d.ts (tsc --noEmit in the consumer), and a misuse does not", async () => {
    consumer.write('example.mjs', readmeExample())
    consumer.write('misuse.mjs', "import {check} from 'smtpdcheck'\nconst verdict = await check({servers: '10:mx1.example.org', timeout: '5'})\nconsole.log(verdict.servr)\n")
    // One run over both files: the example has no error, each misuse has its own.
    const tsconfig = {
      compilerOptions: {target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, allowJs: true, checkJs: true, skipLibCheck: true, types: ['node'], typeRoots: [join(ROOT, 'node_modules', '@types')]},
      files: ['example.mjs', 'misuse.mjs'],
    }
    consumer.write('tsconfig.json', JSON.stringify(tsconfig))
    const tsc = await exec(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], {cwd: consumer.dir, timeout: 60_000}).then(
      () => ({status: 0, stdout: ''}),
      (error: {code: number; stdout: string}) => ({status: error.code, stdout: error.stdout}),
    )
    const errors = tsc.stdout.split('\n').filter((line) => /error TS/.test(line))
    expect(errors.filter((line) => !line.startsWith('misuse.mjs'))).toEqual([])
    expect(errors).toEqual([expect.stringMatching(/^misuse\.mjs\(2,.*TS2322/), expect.stringMatching(/^misuse\.mjs\(2,.*TS2322/), expect.stringMatching(/^misuse\.mjs\(3,.*TS2551.*'servr'/)])
  }, 60_000)
})
