// Issue 19: the man page's command examples (EXAMPLES: SPEC §8's two, and the --verbose one),
// run word for word as the page shows them. In private mount and network namespaces (root,
// unshare): /etc/hosts names s1/s2/s3.domain.com on loopback, SMTP servers answer on
// 127.0.0.1 ports 25 (s1.domain.com) and 2525, and `smtpdcheck` on PATH is this checkout's
// bin/run.js. Nothing leaves the namespaces; the host's /etc/hosts is untouched.
import {execFile, execFileSync} from 'node:child_process'
import {mkdtempSync, rmSync, symlinkSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {promisify} from 'node:util'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {BIN} from './cli.js'
import {manL} from './man-page.js'

const exec = promisify(execFile)

function cannotNamespace(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (private mount and network namespaces)'
  try {
    execFileSync('unshare', ['--mount', '--net', 'true'], {stdio: 'ignore'})
    return undefined
  } catch {
    return 'unshare --mount --net failed'
  }
}
const skip = cannotNamespace()
if (skip) console.warn(`examples skipped: ${skip}`)

/** The page's literal command lines starting with `smtpdcheck `, continuation lines joined. */
function commandExamples(shown: string): string[] {
  const section = shown.slice(shown.indexOf('\nEXAMPLES\n'), shown.indexOf('\nCOMPATIBILITY\n'))
  const joined = section.replace(/ \\\n\s+/g, ' ')
  return [...joined.matchAll(/^\s+(smtpdcheck (?:--stop s2|--verbose)[^\n]*)$/gm)].map((m) => m[1])
}

/** A greeting server on 127.0.0.1 ports 25 and 2525, for the namespace. */
const SERVER = `const net = require('node:net')
for (const port of [25, 2525]) net.createServer((s) => { s.on('error', () => {}); s.end('220 s1.domain.com ESMTP\\r\\n') }).listen(port, '127.0.0.1')
setTimeout(() => process.exit(0), 30000).unref()`

describe.skipIf(skip !== undefined)(`the man page's command examples, word for word${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let dir: string
  let examples: string[] = []
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'smtpdcheck-examples-'))
    writeFileSync(join(dir, 'hosts'), '127.0.0.1 localhost\n127.0.0.1 s1.domain.com\n127.0.0.2 s2.domain.com\n127.0.0.3 s3.domain.com\n')
    writeFileSync(join(dir, 'server.js'), SERVER)
    symlinkSync(BIN, join(dir, 'smtpdcheck'))
    examples = commandExamples((await manL()).stdout)
  })
  afterAll(() => rmSync(dir, {recursive: true, force: true}))

  /** Run `command` (a shell line) in the namespaces: its stdout and exit status. */
  async function inWorld(command: string): Promise<{stdout: string; status: number}> {
    const script = 'ip link set lo up && mount --bind "$0/hosts" /etc/hosts || exit 9\n' +
      'node "$0/server.js" > /dev/null 2>&1 & server=$!\n' +
      'for i in $(seq 50); do node -e "require(\'node:net\').connect(25, \'127.0.0.1\').on(\'connect\', () => process.exit(0)).on(\'error\', () => process.exit(1))" && break; sleep 0.1; done\n' +
      `${command}; echo "exit $?"\nkill $server`
    const env = {PATH: `${dir}:${dirname(process.execPath)}:/usr/sbin:/usr/bin:/sbin:/bin`, XDG_CACHE_HOME: join(dir, 'cache'), HOME: dir}
    const {stdout} = await exec('unshare', ['--mount', '--net', '--propagation', 'private', 'sh', '-c', script, dir], {env, timeout: 60_000, encoding: 'utf8'})
    const status = Number(/exit (\d+)\n$/.exec(stdout)?.[1])
    return {stdout: stdout.replace(/exit \d+\n$/, ''), status}
  }

  it('the page shows three such examples', () => {
    expect(examples).toHaveLength(3)
  })

  it('SPEC §8: "always exits 0 ... because s2.domain.com has the same priority" (s1 is up)', async () => {
    expect(await inWorld(examples[0])).toEqual({stdout: '', status: 0})
  })

  it('SPEC §8: "prints s1.domain.com and exits 1 if s1.domain.com is up"', async () => {
    expect(await inWorld(examples[1])).toEqual({stdout: 's1.domain.com\n', status: 1})
  })

  it('--verbose --port 2525 --timeout 2 127.0.0.1: a test server on port 2525 greets, exit 1', async () => {
    expect(examples[2]).toBe('smtpdcheck --verbose --port 2525 --timeout 2 127.0.0.1')
    expect(await inWorld(`${examples[2]} 2>/dev/null`)).toEqual({stdout: '127.0.0.1\n', status: 1})
  })
})
