// The cache's rules (what an attempt teaches, TTLs on an injected clock) and the file
// cache on a real file system: lazy read, merge, bounds, trust, failures to write.
import {execFile} from 'node:child_process'
import {chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'
import fc from 'fast-check'
import {afterAll, describe, expect, it} from 'vitest'

import type {AttemptOutcome} from '../../src/core/attempt.js'
import {cacheKey, isFresh, lesson, MemoryCache, timeoutEvidenceMs} from '../../src/core/cache.js'
import {cacheDirectory} from '../../src/core/cache-dir.js'
import {defaultCachePath, FileCache, MAX_ENTRIES, MAX_FILE_BYTES, parseCache, serializeCache} from '../../src/core/cache-file.js'
import type {AttemptRecord} from '../../src/core/race.js'

const chattr = (flag: string, path: string) => promisify(execFile)('chattr', [flag, path])
const root = mkdtempSync(join(tmpdir(), 'smtpdcheck-cache-unit-'))
afterAll(() => rmSync(root, {recursive: true, force: true}))
const freshDir = () => mkdtempSync(join(root, 'd'))

const attempt = (outcome: AttemptOutcome, took = 5, more: Partial<AttemptRecord> = {}): AttemptRecord =>
  ({address: '127.0.0.1', port: 25, outcome, startMs: 100, endMs: 100 + took, ...more})
const TTLS = {negative: 60, positive: 0}

describe('lesson: what an attempt teaches', () => {
  it('a 220 greeting teaches available; real failures teach unavailable', () => {
    expect(lesson(attempt('available'))).toBe('available')
    for (const outcome of ['rejected', 'not-smtp', 'closed', 'refused', 'unreachable'] as const) {
      expect(lesson(attempt(outcome)), outcome).toBe('unavailable')
    }
  })

  it('cancelled and cached attempts teach nothing', () => {
    expect(lesson(attempt('cancelled', 5000))).toBeUndefined()
    expect(lesson(attempt('cached', 0, {cachedAs: 'unavailable'}))).toBeUndefined()
  })

  it('a timeout teaches unavailable only after a fair wait: 1 s, or half a shorter budget', () => {
    expect(timeoutEvidenceMs(10_000)).toBe(1000)
    expect(timeoutEvidenceMs(1000)).toBe(500)
    expect(timeoutEvidenceMs(0)).toBe(1000)
    for (const outcome of ['connect-timeout', 'greeting-timeout'] as const) {
      expect(lesson(attempt(outcome, 997), 1000), outcome).toBe('unavailable') // --timeout 1, started at once
      expect(lesson(attempt(outcome, 40), 1000), outcome).toBeUndefined() // started as the budget ran out
      expect(lesson(attempt(outcome, 900), 10_000), outcome).toBeUndefined()
      expect(lesson(attempt(outcome, 1000), 10_000), outcome).toBe('unavailable')
    }
  })

  it('local resource errors (out of descriptors or local ports) teach nothing', () => {
    expect(lesson(attempt('unreachable', 1, {error: 'EMFILE'}))).toBeUndefined()
    expect(lesson(attempt('unreachable', 1, {error: 'EADDRNOTAVAIL'}))).toBeUndefined()
    expect(lesson(attempt('unreachable', 1, {error: 'EHOSTUNREACH'}))).toBe('unavailable')
  })
})

describe('MemoryCache on an injected clock', () => {
  it('skips an unavailable address for exactly the negative TTL', () => {
    let now = 1_000_000
    const cache = new MemoryCache(TTLS, () => now)
    expect(cache.lookup('127.0.0.1', 25)).toBeUndefined()
    expect(cache.note(attempt('refused'))).toBe(true)
    now += 59_999
    expect(cache.lookup('127.0.0.1', 25)).toBe('unavailable')
    expect(cache.lookup('127.0.0.1', 26)).toBeUndefined() // keyed by port too
    now += 1
    expect(cache.lookup('127.0.0.1', 25)).toBeUndefined()
  })

  it('remembers available addresses only with a positive TTL', () => {
    let now = 0
    const off = new MemoryCache(TTLS, () => now)
    off.note(attempt('available'))
    expect(off.lookup('127.0.0.1', 25)).toBeUndefined()
    const on = new MemoryCache({negative: 60, positive: 30}, () => now)
    on.note(attempt('available'))
    now = 29_999
    expect(on.lookup('127.0.0.1', 25)).toBe('available')
    now = 30_000
    expect(on.lookup('127.0.0.1', 25)).toBeUndefined()
  })

  it('a cancelled attempt does not overwrite what was learned', () => {
    const cache = new MemoryCache(TTLS, () => 5)
    cache.note(attempt('refused'))
    expect(cache.note(attempt('cancelled'))).toBe(false)
    expect(cache.lookup('127.0.0.1', 25)).toBe('unavailable')
  })

  it('an entry from the future is not fresh; IPv6 keys are bracketed', () => {
    expect(isFresh({state: 'unavailable', seenAt: 2000}, 1000, TTLS)).toBe(false)
    expect(cacheKey('::1', 25)).toBe('[::1]:25')
    expect(cacheKey('127.0.0.1', 25)).toBe('127.0.0.1:25')
  })
})

describe('defaultCachePath', () => {
  it('prefers an absolute $XDG_CACHE_HOME, else ~/.cache', () => {
    expect(defaultCachePath({XDG_CACHE_HOME: '/x/c'}, () => '/home/u')).toBe('/x/c/smtpdcheck/cache.json')
    expect(defaultCachePath({XDG_CACHE_HOME: 'relative'}, () => '/home/u')).toBe('/home/u/.cache/smtpdcheck/cache.json')
    expect(defaultCachePath({}, () => '/home/u')).toBe('/home/u/.cache/smtpdcheck/cache.json')
    expect(defaultCachePath({}, () => '')).toBeUndefined()
  })
})

/** A file cache at `path` on clock `now`, collecting what it says. */
function fileCache(path: string, now: () => number, ttls = TTLS) {
  const said: string[] = []
  const cache = new FileCache(path, ttls, {now, budgetMs: 1000, say: (m) => said.push(m)})
  return {cache, said}
}
const doc = (entries: Record<string, unknown>) => JSON.stringify({version: 1, entries})

describe('FileCache', () => {
  it('reads lazily: nothing before the first lookup, and a run that learns nothing writes nothing', async () => {
    const path = join(freshDir(), 'cache.json')
    const {cache, said} = fileCache(path, () => 1000)
    writeFileSync(path, doc({'127.0.0.1:25': {state: 'unavailable', seenAt: 900}}), {mode: 0o600})
    expect(said).toEqual([])
    expect(cache.lookup('127.0.0.1', 25)).toBe('unavailable') // written after construction: read at lookup
    expect(said).toEqual([`1 entry in ${path}`])
    const before = statSync(path)
    await cache.save()
    expect(statSync(path).mtimeMs).toBe(before.mtimeMs)
    expect(statSync(path).ino).toBe(before.ino)
  })

  it('TTL expiry across runs on an injected clock', async () => {
    const path = join(freshDir(), 'cache.json')
    const first = fileCache(path, () => 10_000).cache
    first.lookup('127.0.0.1', 25)
    first.note(attempt('refused'))
    await first.save()
    expect(fileCache(path, () => 10_000 + 59_999).cache.lookup('127.0.0.1', 25)).toBe('unavailable')
    expect(fileCache(path, () => 10_000 + 60_000).cache.lookup('127.0.0.1', 25)).toBeUndefined()
  })

  it('both TTLs 0: the file is neither read nor written, so it is not emptied either', async () => {
    const path = join(freshDir(), 'cache.json')
    const planted = doc({'127.0.0.1:25': {state: 'unavailable', seenAt: 900}})
    writeFileSync(path, planted, {mode: 0o600})
    const {cache, said} = fileCache(path, () => 1000, {negative: 0, positive: 0})
    expect(cache.lookup('127.0.0.1', 25)).toBeUndefined()
    cache.note(attempt('refused', 1, {address: '127.0.0.2'}))
    await cache.save()
    expect(readFileSync(path, 'utf8')).toBe(planted)
    expect(said).toEqual([`${path} not used: both TTLs are 0`])
  })

  it('creates the directory 0700 and the file 0600, and leaves no temp file', async () => {
    const dir = join(freshDir(), 'a', 'b')
    const {cache} = fileCache(join(dir, 'cache.json'), () => 1)
    cache.lookup('127.0.0.1', 25)
    cache.note(attempt('refused'))
    await cache.save()
    expect(statSync(dir).mode & 0o777).toBe(0o700)
    expect(statSync(join(dir, 'cache.json')).mode & 0o777).toBe(0o600)
    expect(readdirSync(dir)).toEqual(['cache.json'])
  })

  it('merges with the file as it is at save time; the newer sighting wins; expired entries go', async () => {
    const path = join(freshDir(), 'cache.json')
    writeFileSync(path, doc({
      '127.0.0.9:25': {state: 'unavailable', seenAt: 100}, // expired at 100_000
      '127.0.0.1:25': {state: 'unavailable', seenAt: 50_000},
    }), {mode: 0o600})
    const a = fileCache(path, () => 100_000, {negative: 60, positive: 60}).cache
    const b = fileCache(path, () => 100_000, {negative: 60, positive: 60}).cache
    a.lookup('127.0.0.2', 25)
    b.lookup('127.0.0.3', 25)
    a.note(attempt('refused', 1, {address: '127.0.0.2'}))
    b.note(attempt('available', 1, {address: '127.0.0.1'}))
    await a.save()
    await b.save() // b read the file before a wrote it: it still keeps a's entry
    const entries = parseCache(readFileSync(path, 'utf8'))
    expect(entries).toEqual(new Map([
      ['127.0.0.1:25', {state: 'available', seenAt: 100_000}],
      ['127.0.0.2:25', {state: 'unavailable', seenAt: 100_000}],
    ]))
  })

  it(`keeps the newest ${MAX_ENTRIES} entries`, async () => {
    const path = join(freshDir(), 'cache.json')
    const many: Record<string, unknown> = {}
    for (let i = 0; i < MAX_ENTRIES + 200; i++) many[`10.0.${i >> 8}.${i & 255}:25`] = {state: 'unavailable', seenAt: 1000 + i}
    writeFileSync(path, doc(many), {mode: 0o600})
    const {cache} = fileCache(path, () => 50_000)
    cache.lookup('127.0.0.1', 25)
    cache.note(attempt('refused'))
    await cache.save()
    const text = readFileSync(path, 'utf8')
    const entries = parseCache(text) as Map<string, unknown>
    expect(entries.size).toBe(MAX_ENTRIES)
    expect(entries.has('127.0.0.1:25')).toBe(true)
    expect(entries.has(`10.0.4.175:25`)).toBe(true) // the newest planted one (i = 1199)
    expect(entries.has('10.0.0.0:25')).toBe(false) // among the oldest
    expect(text.length).toBeLessThan(MAX_FILE_BYTES)
  })

  it('parseCache refuses every malformed document whole', () => {
    const good = {state: 'unavailable', seenAt: 1}
    expect(parseCache('garbage')).toMatch(/^corrupt/)
    expect(parseCache(doc({'127.0.0.1:25': good}).slice(0, 30))).toMatch(/not JSON/)
    expect(parseCache(JSON.stringify({version: 2, entries: {}}))).toMatch(/version/)
    expect(parseCache(JSON.stringify({version: 1, entries: []}))).toMatch(/version/)
    expect(parseCache(doc({'127.0.0.1:25': {state: 'unavailable', seenAt: '1'}}))).toMatch(/bad entry/)
    expect(parseCache(doc({'127.0.0.1:25': {state: 'down', seenAt: 1}}))).toMatch(/bad entry/)
    expect(parseCache(doc({'127.0.0.1:25': good, 'mx.example:25': good}))).toMatch(/bad entry "mx.example:25"/)
    expect(parseCache(serializeCache([['[::1]:25', good]]))).toEqual(new Map([['[::1]:25', good]]))
  })

  const planted = doc({'127.0.0.1:25': {state: 'unavailable', seenAt: 1000}})
  const ignored: Array<[string, (path: string) => void | Promise<void>, RegExp]> = [
    ['garbage', (p) => writeFileSync(p, '\u0000\u00ffnot json at all', {mode: 0o600}), /corrupt \(not JSON\)/],
    ['truncated JSON', (p) => writeFileSync(p, planted.slice(0, -5), {mode: 0o600}), /corrupt \(not JSON\)/],
    ['wrong types', (p) => writeFileSync(p, doc({'127.0.0.1:25': {state: 'unavailable', seenAt: null}}), {mode: 0o600}), /corrupt \(bad entry/],
    ['huge', (p) => writeFileSync(p, planted.replace('{', `{"pad":"${'x'.repeat(MAX_FILE_BYTES)}",`), {mode: 0o600}), /larger than 262144 bytes/],
    ['world-writable', (p) => { writeFileSync(p, planted); chmodSync(p, 0o602) }, /writable by group or others \(mode 602\)/],
    ['group-writable', (p) => { writeFileSync(p, planted); chmodSync(p, 0o620) }, /writable by group or others \(mode 620\)/],
    ['foreign-owned', (p) => { writeFileSync(p, planted, {mode: 0o600}); chownSync(p, process.getuid!() + 1, process.getgid!()) }, /owned by uid/],
    ['directory', (p) => mkdirSync(p), /not a regular file/],
    ['FIFO (must not block)', (p) => promisify(execFile)('mkfifo', [p]).then(() => undefined), /not a regular file/],
  ]
  it.each(ignored)('ignores a %s file and says why', async (_name, make, why) => {
    const path = join(freshDir(), 'cache.json')
    await make(path)
    const {cache, said} = fileCache(path, () => 2000)
    expect(cache.lookup('127.0.0.1', 25)).toBeUndefined()
    expect(said).toHaveLength(1)
    expect(said[0]).toMatch(why)
    expect(said[0]).toContain(`ignored ${path}: `)
  })

  it('control: the same planted file, ours and 0600, is believed', () => {
    const path = join(freshDir(), 'cache.json')
    writeFileSync(path, planted, {mode: 0o600})
    expect(fileCache(path, () => 2000).cache.lookup('127.0.0.1', 25)).toBe('unavailable')
  })

  it('a corrupt file is replaced by a good one when the run learned something', async () => {
    const path = join(freshDir(), 'cache.json')
    writeFileSync(path, '{"version":1,"entr', {mode: 0o600})
    const {cache} = fileCache(path, () => 5000)
    cache.lookup('127.0.0.1', 25)
    cache.note(attempt('refused'))
    await cache.save()
    expect(parseCache(readFileSync(path, 'utf8'))).toEqual(new Map([['127.0.0.1:25', {state: 'unavailable', seenAt: 5000}]]))
  })

  it('a cache "directory" that is a regular file: the cache is off, said once, never thrown', async () => {
    const parent = join(freshDir(), 'plain-file')
    writeFileSync(parent, '')
    const {cache, said} = fileCache(join(parent, 'cache.json'), () => 1)
    expect(cache.lookup('127.0.0.1', 25)).toBeUndefined()
    cache.note(attempt('refused'))
    await expect(cache.save()).resolves.toBeUndefined()
    expect(said).toEqual([`off: ${parent} is not a directory`])
  })

  it('a directory nobody may write into, root included (chattr +i: EPERM), is said, never thrown', async (ctx) => {
    const dir = freshDir()
    const path = join(dir, 'cache.json')
    writeFileSync(path, planted, {mode: 0o600})
    try {
      await chattr('+i', dir)
    } catch {
      return ctx.skip('chattr +i is not available here')
    }
    try {
      const {cache, said} = fileCache(path, () => 2000)
      expect(cache.lookup('127.0.0.1', 25)).toBe('unavailable')
      cache.note(attempt('refused', 1, {address: '127.0.0.2'}))
      await expect(cache.save()).resolves.toBeUndefined()
      expect(said).toEqual([`1 entry in ${path}`, `not written to ${path}: EPERM`])
      expect(readFileSync(path, 'utf8')).toBe(planted)
    } finally {
      await chattr('-i', dir)
    }
  })
})

describe('cacheDirectory: which directory the cache may live in (issue 14)', () => {
  const me = process.getuid!()
  const IS_ROOT = me === 0

  /**
   * The rule as the issue and the man page state it, written apart from the code: the
   * directory itself is ours and writable by nobody else; a directory above it is root's or
   * ours, and writable by others only when sticky.
   */
  function oracle(dir: {mode: number; uid: number}, up: {mode: number; uid: number}, uid: number): 'trusted' | 'dir-owner' | 'dir-mode' | 'up-owner' | 'up-mode' {
    if (dir.uid !== uid) return 'dir-owner'
    if (dir.mode & 0o022) return 'dir-mode'
    if (up.uid !== 0 && up.uid !== uid) return 'up-owner'
    if (up.mode & 0o022 && !(up.mode & 0o1000)) return 'up-mode'
    return 'trusted'
  }
  const kind = (why: string | undefined, dir: string, up: string) =>
    why === undefined ? 'trusted'
      : why.startsWith(`${dir} is owned`) ? 'dir-owner'
      : why.startsWith(`${dir} is writable`) ? 'dir-mode'
      : why.startsWith(`${up} is owned`) ? 'up-owner'
      : why.startsWith(`${up} is writable`) ? 'up-mode'
      : `other: ${why}`

  it('owner and mode of the directory and of the one above it, over the whole mode space (fast-check)', () => {
    // Owners: really chowned when root; otherwise the files are ours and the uid asked about varies.
    const owners = IS_ROOT ? [0, 1000, 65534] : [me]
    const askers = IS_ROOT ? [0, 65534] : [me, me + 1]
    const reached = new Map<string, number>()
    // Any mode up to sticky+0777, and often the usual ones.
    const mode = fc.oneof(fc.integer({min: 0, max: 0o1777}), fc.constantFrom(0o700, 0o755, 0o777, 0o1777, 0o775, 0o1770))
    fc.assert(
      fc.property(
        fc.record({mode, uid: fc.constantFrom(...owners)}),
        fc.record({mode, uid: fc.constantFrom(...owners)}),
        fc.constantFrom(...askers),
        (dir, up, uid) => {
          const upPath = join(freshDir(), 'up')
          const dirPath = join(upPath, 'smtpdcheck')
          mkdirSync(dirPath, {recursive: true})
          for (const [path, spec] of [[dirPath, dir], [upPath, up]] as const) {
            if (IS_ROOT) chownSync(path, spec.uid, spec.uid)
            chmodSync(path, spec.mode)
          }
          const expected = oracle(dir, up, uid)
          reached.set(expected, (reached.get(expected) ?? 0) + 1)
          const got = cacheDirectory(dirPath, false, uid)
          expect(kind(got.why, dirPath, upPath)).toBe(expected)
          if (expected === 'trusted') expect(got.real).toBe(dirPath)
        },
      ),
      // 'up-mode' needs four independent draws to line up (about 1 run in 37 as root): 1200
      // runs reach it about 32 times, so the "at least 5" below does not fail by chance.
      {numRuns: 1200},
    )
    // Not root: every file is ours, so "the directory above is someone else's" cannot be made.
    const branches = ['trusted', 'dir-owner', 'dir-mode', 'up-mode', ...(IS_ROOT ? ['up-owner'] : [])]
    for (const branch of branches) expect(reached.get(branch) ?? 0, branch).toBeGreaterThanOrEqual(5)
  })

  it('a symbolic link above the directory is resolved: the real path is the one used', () => {
    const realUp = freshDir()
    mkdirSync(join(realUp, 'smtpdcheck'), {mode: 0o700})
    const link = join(freshDir(), 'link')
    symlinkSync(realUp, link)
    expect(cacheDirectory(join(link, 'smtpdcheck'), false)).toEqual({real: join(realUp, 'smtpdcheck')})
  })

  it('a missing directory: missing when reading; made 0700 component by component when writing', () => {
    const up = freshDir()
    const dir = join(up, 'a', 'b', 'smtpdcheck')
    expect(cacheDirectory(dir, false)).toEqual({missing: true})
    expect(cacheDirectory(dir, true)).toEqual({real: dir})
    for (const path of [join(up, 'a'), join(up, 'a', 'b'), dir]) expect(statSync(path).mode & 0o7777).toBe(0o700)
  })

  it('nothing is made under a directory others may write (0777, not sticky), nor through a link there', () => {
    const open = freshDir()
    chmodSync(open, 0o777)
    const elsewhere = freshDir()
    symlinkSync(elsewhere, join(open, 'planted'))
    expect(cacheDirectory(join(open, 'smtpdcheck'), true).why).toMatch(/is writable by group or others and not sticky \(mode 777\)$/)
    expect(cacheDirectory(join(open, 'planted', 'smtpdcheck'), true).why).toMatch(/is writable by group or others and not sticky \(mode 777\)$/)
    expect(readdirSync(open)).toEqual(['planted'])
    expect(readdirSync(elsewhere)).toEqual([])
  })
})

describe('FileCache in a long-lived process (serve): save again and again', () => {
  it('each save writes what was learned since; a directory made unfit between saves is said once, then used again when fixed', async () => {
    const xdg = freshDir()
    const dir = join(xdg, 'smtpdcheck')
    const path = join(dir, 'cache.json')
    let now = 1000
    const said: string[] = []
    const cache = new FileCache(path, TTLS, {now: () => now, say: (m) => said.push(m)})
    cache.lookup('127.0.0.1', 25)
    cache.note(attempt('refused'))
    await cache.save()
    await cache.save() // nothing new: nothing written
    expect(said).toEqual([`no cache yet (${path} does not exist)`, `wrote 1 entry to ${path}`])
    chmodSync(dir, 0o777)
    for (const address of ['127.0.0.2', '127.0.0.3']) {
      now += 1000
      cache.note(attempt('refused', 1, {address}))
      await cache.save()
    }
    expect(said.slice(2)).toEqual([`off: ${dir} is writable by group or others (mode 777)`])
    expect([...(parseCache(readFileSync(path, 'utf8')) as Map<string, unknown>).keys()]).toEqual(['127.0.0.1:25'])
    chmodSync(dir, 0o700)
    await cache.save() // what was learned while off is still owed
    expect(said.at(-1)).toBe(`wrote 3 entries to ${path}`)
    expect(readdirSync(dir)).toEqual(['cache.json'])
  })
})
