// Issue 14 through the built binary, as root and as an unprivileged user (nobody): a cache
// directory or file that someone else could have chosen is not used, and disk trouble
// leaves nothing behind. Each case plants a *poisoned* cache (it says the live server on
// 127.0.14.1 is unavailable) where the attack would make smtpdcheck read it: believed, it
// would turn the answer 1 into 0. So each case checks the answer and exit status are
// unchanged, no foreign file was written, no temp file is left, and --verbose says why.
import {execFile} from 'node:child_process'
import {chmodSync, chownSync, cpSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync, utimesSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {runTimed} from '../fixtures/spawn.js'
import {startSmtp} from '../fixtures/smtp.js'
import {runCli, type CliResult} from './cli.js'
import {closedAfterEach} from './fixtures.js'

const exec = promisify(execFile)
const ROOT = new URL('..', import.meta.url).pathname
const IS_ROOT = process.getuid?.() === 0
const NOBODY = 65534
const NOT_ROOT = 'needs root (chown, setpriv, mount); CI runs as root'

// A 0755 place every runner can reach: the repository may sit where only root can read.
const base = mkdtempSync(join(tmpdir(), 'smtpdcheck-trust-'))
chmodSync(base, 0o755)
const mounts: string[] = []
afterAll(async () => {
  for (const mount of mounts) await exec('umount', [mount]).catch(() => {})
  rmSync(base, {recursive: true, force: true})
})

// The fast path (bin/run.js + dist/smtpdcheck.cjs) needs no node_modules: copy it once, 0755.
const pkg = join(base, 'pkg')
beforeAll(() => {
  for (const part of ['bin', 'dist', 'package.json']) cpSync(join(ROOT, part), join(pkg, part), {recursive: true})
  for (const dir of [pkg, join(pkg, 'bin'), join(pkg, 'dist')]) chmodSync(dir, 0o755)
})

interface Runner {
  readonly name: string
  readonly uid: number
  readonly gid: number
  /** Another user, for "owned by someone else". */
  readonly other: number
  run(args: string[], env: NodeJS.ProcessEnv): Promise<CliResult>
}
const me: Runner = {name: IS_ROOT ? 'root' : 'this user', uid: process.getuid!(), gid: process.getgid!(), other: IS_ROOT ? NOBODY : 0, run: (args, env) => runCli(args, {env})}
const nobody: Runner = {
  name: 'nobody',
  uid: NOBODY,
  gid: NOBODY,
  other: 0,
  run: (args, env) =>
    runTimed(['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, join(pkg, 'bin', 'run.js'), ...args], {command: 'setpriv', env, limitMs: 15_000}),
}

const keep = closedAfterEach()
/** The live server every case asks about: 220 at once on 127.0.14.1 (or as `greet` plays it). */
const live = (greet?: Parameters<typeof startSmtp>[0]['greet']) => keep(startSmtp({host: '127.0.14.1', ...(greet ? {greet} : {greeting: '220 up\r\n'})}))
/** Says the live server is unavailable: believed, the answer would become exit 0. */
const poisoned = (port: number) => JSON.stringify({version: 1, entries: {[`127.0.14.1:${port}`]: {state: 'unavailable', seenAt: Date.now()}}})
/** Every temp file left under `dir`. */
const temps = (dir: string) => (readdirSync(dir, {recursive: true}) as string[]).filter((name) => name.endsWith('.tmp'))
/** The lines --verbose gives about the cache. */
const cacheLines = (r: CliResult) => (r.stderr.match(/^\+ *\d+ms cache: .*$/gm) ?? []).map((line) => line.replace(/^\+ *\d+ms /, ''))

describe.each([me, nobody])('as %s', (runner) => {
  const skip = runner === nobody && !IS_ROOT ? NOT_ROOT : undefined

  /** A fresh directory of the runner's (0700) under the shared base; owned by `uid` with `mode`. */
  function dirOf(parent: string, name: string, uid = runner.uid, mode = 0o700): string {
    const dir = join(parent, name)
    mkdirSync(dir)
    chmodSync(dir, mode)
    if (IS_ROOT) chownSync(dir, uid, uid === runner.uid ? runner.gid : uid)
    return dir
  }
  /** A file of `uid`'s (the runner's by default), 0600. */
  function fileOf(path: string, text: string, uid = runner.uid): void {
    writeFileSync(path, text, {mode: 0o600})
    if (IS_ROOT) chownSync(path, uid, uid === runner.uid ? runner.gid : uid)
  }
  function home(): string {
    const up = mkdtempSync(join(base, 'h'))
    chmodSync(up, 0o755)
    return dirOf(up, 'home')
  }
  /** A run that learns something (--positive-ttl: the 220 is remembered) and says everything. */
  const ask = (port: number, env: NodeJS.ProcessEnv, more: string[] = []) =>
    runner.run(['--verbose', '--positive-ttl', '60', '--port', String(port), ...more, '127.0.14.1'], env)
  const envFor = (xdg: string): NodeJS.ProcessEnv => ({...process.env, XDG_CACHE_HOME: xdg, HOME: xdg})
  /** The answer is the live server's, whatever the cache held. */
  const answered = (r: CliResult) => expect(r).toMatchObject({stdout: '127.0.14.1\n', status: 1})

  it.skipIf(skip)('control: a poisoned file in a trusted directory is believed (the cases below can fail)', async () => {
    const server = await live()
    const dir = dirOf(home(), 'smtpdcheck')
    fileOf(join(dir, 'cache.json'), poisoned(server.port))
    const r = await ask(server.port, envFor(join(dir, '..')))
    expect(r).toMatchObject({stdout: '', status: 0})
    expect(server.connections.length).toBe(0)
  })

  it.skipIf(skip)('a symbolic link as the cache directory: not followed, the target untouched', async () => {
    const server = await live()
    const xdg = home()
    const target = dirOf(xdg, 'target')
    fileOf(join(target, 'cache.json'), poisoned(server.port))
    const before = readFileSync(join(target, 'cache.json'), 'utf8')
    symlinkSync(target, join(xdg, 'smtpdcheck'))
    const r = await ask(server.port, envFor(xdg))
    answered(r)
    expect(cacheLines(r)).toEqual([`cache: off: ${xdg}/smtpdcheck is a symbolic link`])
    expect(readdirSync(target)).toEqual(['cache.json'])
    expect(readFileSync(join(target, 'cache.json'), 'utf8')).toBe(before)
  })

  it.skipIf(skip || !IS_ROOT)('a cache directory owned by another user: neither read nor written', async () => {
    const server = await live()
    const xdg = home()
    const dir = dirOf(xdg, 'smtpdcheck', runner.other, 0o755)
    fileOf(join(dir, 'cache.json'), poisoned(server.port)) // the runner's file, in the other user's directory
    const before = readFileSync(join(dir, 'cache.json'), 'utf8')
    const r = await ask(server.port, envFor(xdg))
    answered(r)
    expect(cacheLines(r)).toEqual([`cache: off: ${dir} is owned by uid ${runner.other}, not ${runner.uid}`])
    expect(readdirSync(dir)).toEqual(['cache.json'])
    expect(readFileSync(join(dir, 'cache.json'), 'utf8')).toBe(before)
  })

  it.skipIf(skip)('a world-writable cache directory (ours, 0777): neither read nor written', async () => {
    const server = await live()
    const xdg = home()
    const dir = dirOf(xdg, 'smtpdcheck', runner.uid, 0o777)
    fileOf(join(dir, 'cache.json'), poisoned(server.port))
    const before = statSync(join(dir, 'cache.json'))
    const r = await ask(server.port, envFor(xdg))
    answered(r)
    expect(cacheLines(r)).toEqual([`cache: off: ${dir} is writable by group or others (mode 777)`])
    expect(readdirSync(dir)).toEqual(['cache.json'])
    expect(statSync(join(dir, 'cache.json')).mtimeMs).toBe(before.mtimeMs)
  })

  it.skipIf(skip)('--cache-file in a sticky world-writable directory such as /tmp: refused', async () => {
    const server = await live()
    const sticky = dirOf(home(), 'tmp', runner.uid, 0o1777)
    const r = await ask(server.port, envFor(home()), ['--cache-file', join(sticky, 'cache.json')])
    answered(r)
    expect(cacheLines(r)).toEqual([`cache: off: ${sticky} is writable by group or others (mode 1777)`])
    expect(readdirSync(sticky)).toEqual([])
  })

  it.skipIf(skip)('a cache directory made under a sticky world-writable directory is ours and 0700, and used', async () => {
    const server = await live()
    const sticky = dirOf(home(), 'tmp', runner.uid, 0o1777)
    const r = await ask(server.port, envFor(sticky))
    answered(r)
    expect(cacheLines(r)).toEqual([`cache: no cache yet (${sticky}/smtpdcheck/cache.json does not exist)`, `cache: wrote 1 entry to ${sticky}/smtpdcheck/cache.json`])
    expect(statSync(join(sticky, 'smtpdcheck'))).toMatchObject({uid: runner.uid, mode: 0o40700})
  })

  it.skipIf(skip)('a symbolic link as the cache file: not followed; the link is replaced, its target untouched', async () => {
    const server = await live()
    const xdg = home()
    const dir = dirOf(xdg, 'smtpdcheck')
    const elsewhere = join(xdg, 'elsewhere.json')
    fileOf(elsewhere, poisoned(server.port))
    const before = readFileSync(elsewhere, 'utf8')
    symlinkSync(elsewhere, join(dir, 'cache.json'))
    const r = await ask(server.port, envFor(xdg))
    answered(r)
    expect(cacheLines(r)).toEqual([`cache: ignored ${dir}/cache.json: a symbolic link`, `cache: wrote 1 entry to ${dir}/cache.json`])
    expect(readFileSync(elsewhere, 'utf8')).toBe(before)
    expect(lstatSync(join(dir, 'cache.json')).isFile()).toBe(true)
    expect(temps(xdg)).toEqual([])
  })

  /** Swap cache.json for `what` while the run waits for the greeting (after its read, before its save). */
  async function swappedMidRun(what: (path: string) => void) {
    const xdg = home()
    const dir = dirOf(xdg, 'smtpdcheck')
    const path = join(dir, 'cache.json')
    fileOf(path, JSON.stringify({version: 1, entries: {'127.0.14.9:25': {state: 'unavailable', seenAt: Date.now()}}}))
    const server = await live((socket) => {
      what(path)
      socket.write('220 up\r\n')
    })
    const r = await ask(server.port, envFor(xdg))
    answered(r)
    expect(cacheLines(r)[0]).toBe(`cache: 1 entry in ${path}`)
    expect(temps(xdg)).toEqual([])
    return {r, path}
  }

  it.skipIf(skip)('the file swapped for a directory mid-run: not written (EISDIR), no temp file left', async () => {
    const {r, path} = await swappedMidRun((path) => {
      unlinkSync(path)
      mkdirSync(path, {mode: 0o700})
      if (IS_ROOT) chownSync(path, runner.uid, runner.gid)
    })
    expect(cacheLines(r).slice(1)).toEqual([`cache: not written to ${path}: EISDIR`])
    expect(lstatSync(path).isDirectory()).toBe(true)
  })

  it.skipIf(skip)('the file swapped for a FIFO mid-run: never blocks; the FIFO is replaced by the cache', async () => {
    const xdg = home()
    const fifo = join(xdg, 'fifo')
    await exec('mkfifo', ['-m', '600', fifo])
    if (IS_ROOT) chownSync(fifo, runner.uid, runner.gid)
    const {r, path} = await swappedMidRun((path) => renameSync(fifo, path))
    expect(r.ms).toBeLessThan(10_000)
    expect(cacheLines(r).slice(1)).toEqual([`cache: wrote 2 entries to ${path}`])
    expect(lstatSync(path).isFile()).toBe(true)
  })

  it.skipIf(skip)('a read-only cache directory: the answer unchanged, no temp file left', async () => {
    const server = await live()
    const xdg = home()
    const dir = dirOf(xdg, 'smtpdcheck', runner.uid, 0o500)
    const r = await ask(server.port, envFor(xdg))
    answered(r)
    // root may write into a 0500 directory of its own; anyone else gets EACCES.
    expect(cacheLines(r)[1]).toBe(runner.uid === 0 ? `cache: wrote 1 entry to ${dir}/cache.json` : `cache: not written to ${dir}/cache.json: EACCES`)
    expect(temps(dir)).toEqual([])
  })

  describe('on a full file system (tmpfs, 16 KiB)', () => {
    /** A tmpfs of 16 KiB with a cache directory of the runner's in it, filled to the last byte by root. */
    async function fullTmpfs(ro = false) {
      const mnt = mkdtempSync(join(base, 'mnt'))
      chmodSync(mnt, 0o755)
      await exec('mount', ['-t', 'tmpfs', '-o', 'size=16k,mode=0755', 'tmpfs', mnt])
      mounts.push(mnt)
      const dir = dirOf(mnt, 'smtpdcheck')
      const chunk = Buffer.alloc(1024, 'x')
      try {
        for (let i = 0; i < 64; i++) writeFileSync(join(mnt, 'filler'), chunk, {flag: 'a'})
        throw new Error('the tmpfs did not fill up')
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error
      }
      if (ro) await exec('mount', ['-o', 'remount,ro', mnt])
      return {mnt, dir}
    }

    it.skipIf(skip || !IS_ROOT)('ENOSPC: not written, said, the answer unchanged, no temp file left', async () => {
      const server = await live()
      const {dir} = await fullTmpfs()
      const env = envFor(join(dir, '..'))
      for (let i = 0; i < 3; i++) {
        const r = await ask(server.port, env)
        answered(r)
        expect(cacheLines(r)).toEqual([`cache: no cache yet (${dir}/cache.json does not exist)`, `cache: not written to ${dir}/cache.json: ENOSPC`])
        expect(readdirSync(dir)).toEqual([])
      }
    })

    it.skipIf(skip || !IS_ROOT)('a stale temp file filling the disk is removed, and then the cache is written', async () => {
      const server = await live()
      const {mnt, dir} = await fullTmpfs()
      unlinkSync(join(mnt, 'filler'))
      const orphan = join(dir, '.cache.json.4242.deadbeef.tmp')
      try {
        for (let i = 0; i < 64; i++) writeFileSync(orphan, Buffer.alloc(1024, 'x'), {flag: 'a'})
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error
      }
      utimesSync(orphan, new Date(Date.now() - 120_000), new Date(Date.now() - 120_000))
      const r = await ask(server.port, envFor(mnt))
      answered(r)
      expect(cacheLines(r)[1]).toBe(`cache: wrote 1 entry to ${dir}/cache.json`)
      expect(readdirSync(dir)).toEqual(['cache.json'])
    })

    it.skipIf(skip || !IS_ROOT)('a read-only file system (EROFS, root included): not written, the answer unchanged', async () => {
      const server = await live()
      const {dir} = await fullTmpfs(true)
      const r = await ask(server.port, envFor(join(dir, '..')))
      answered(r)
      expect(cacheLines(r)[1]).toBe(`cache: not written to ${dir}/cache.json: EROFS`)
      expect(readdirSync(dir)).toEqual([])
    })
  })

  it.skipIf(skip)('stale temp files of ours (over a minute old) are removed when the cache is written; others are kept', async () => {
    const server = await live()
    const xdg = home()
    const dir = dirOf(xdg, 'smtpdcheck')
    const old = new Date(Date.now() - 120_000)
    const names = {
      stale: '.cache.json.999999.abcdefgh.tmp',
      live: '.cache.json.999998.ijklmnop.tmp', // another run's, still being written
      foreign: '.other.json.1.a.tmp',
      notes: 'notes.txt',
    }
    for (const [what, name] of Object.entries(names)) {
      fileOf(join(dir, name), 'x')
      if (what !== 'live') utimesSync(join(dir, name), old, old)
    }
    const r = await ask(server.port, envFor(xdg))
    answered(r)
    expect(readdirSync(dir).sort()).toEqual([names.live, names.foreign, 'cache.json', names.notes].sort())
  })
})
