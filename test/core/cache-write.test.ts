// Issue 14: a failure at any step after the temp file exists (a write that fails with
// ENOSPC, EDQUOT or EIO, a short write, a failed close or rename) leaves no temp file and
// no change to the cache file, is said and never thrown; the next save tries again.
// node:fs is the real one, with writeSync/closeSync/renameSync made to fail on demand.
import * as fs from 'node:fs'
import {mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, afterEach, describe, expect, it, vi} from 'vitest'

import {FileCache, parseCache} from '../../src/core/cache-file.js'

vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs')>()
  return {...real, writeSync: vi.fn(real.writeSync), closeSync: vi.fn(real.closeSync), renameSync: vi.fn(real.renameSync)}
})
const real = await vi.importActual<typeof import('node:fs')>('node:fs')

const root = mkdtempSync(join(tmpdir(), 'smtpdcheck-cache-write-'))
afterAll(() => rmSync(root, {recursive: true, force: true}))
afterEach(() => vi.mocked(fs.writeSync).mockReset().mockImplementation(real.writeSync as typeof fs.writeSync))
afterEach(() => vi.mocked(fs.closeSync).mockReset().mockImplementation(real.closeSync))
afterEach(() => vi.mocked(fs.renameSync).mockReset().mockImplementation(real.renameSync))

const fail = (code: string) => Object.assign(new Error(`${code}: simulated`), {code})
const OLD = JSON.stringify({version: 1, entries: {'127.0.0.9:25': {state: 'unavailable', seenAt: 1000}}})

/** A cache in a fresh directory that learned one thing; `planted` is the file's text before the save, if any. */
function learned(planted?: string) {
  const dir = mkdtempSync(join(root, 'd'))
  const path = join(dir, 'cache.json')
  if (planted !== undefined) writeFileSync(path, planted, {mode: 0o600})
  const said: string[] = []
  const cache = new FileCache(path, {negative: 60, positive: 0}, {now: () => 2000, say: (m) => said.push(m)})
  cache.lookup('127.0.0.1', 25)
  cache.note({address: '127.0.0.1', port: 25, outcome: 'refused', startMs: 0, endMs: 1})
  return {dir, path, cache, said}
}

describe('every failure after the temp file exists removes it', () => {
  const failures: Array<[string, string, () => void]> = [
    ['the write fails: disk full', 'ENOSPC', () => vi.mocked(fs.writeSync).mockImplementationOnce(() => { throw fail('ENOSPC') })],
    ['the write fails: quota', 'EDQUOT', () => vi.mocked(fs.writeSync).mockImplementationOnce(() => { throw fail('EDQUOT') })],
    ['the write fails: I/O error', 'EIO', () => vi.mocked(fs.writeSync).mockImplementationOnce(() => { throw fail('EIO') })],
    ['the second write fails after a short first one', 'ENOSPC', () =>
      vi.mocked(fs.writeSync)
        .mockImplementationOnce(((fd: number, buffer: Buffer, offset: number) => real.writeSync(fd, buffer, offset, 1)) as typeof fs.writeSync)
        .mockImplementationOnce(() => { throw fail('ENOSPC') })],
    ['the close fails (NFS reports a lost write there)', 'EIO', () => vi.mocked(fs.closeSync).mockImplementation((fd) => {
      real.closeSync(fd)
      throw fail('EIO')
    })],
    ['the rename fails', 'EXDEV', () => vi.mocked(fs.renameSync).mockImplementationOnce(() => { throw fail('EXDEV') })],
  ]

  it.each(failures)('%s (%s): said, not thrown, no temp file, the file unchanged; the next save writes', async (_name, code, arrange) => {
    for (const planted of [undefined, OLD]) {
      const {dir, path, cache, said} = learned(planted)
      arrange()
      await expect(cache.save()).resolves.toBeUndefined()
      expect(said.at(-1)).toBe(`not written to ${path}: ${code}`)
      expect(readdirSync(dir)).toEqual(planted === undefined ? [] : ['cache.json'])
      if (planted !== undefined) expect(readFileSync(path, 'utf8')).toBe(planted)
      vi.mocked(fs.closeSync).mockImplementation(real.closeSync)
      await cache.save()
      expect(said.at(-1)).toMatch(/^wrote \d entr/)
      expect(readdirSync(dir)).toEqual(['cache.json'])
      expect(parseCache(readFileSync(path, 'utf8'))).toBeInstanceOf(Map)
    }
  })

  it('control: short writes that succeed still write the whole document', async () => {
    const {path, cache} = learned()
    vi.mocked(fs.writeSync).mockImplementation(((fd: number, buffer: Buffer, offset: number) => real.writeSync(fd, buffer, offset, 1)) as typeof fs.writeSync)
    await cache.save()
    expect(parseCache(readFileSync(path, 'utf8'))).toEqual(new Map([['127.0.0.1:25', {state: 'unavailable', seenAt: 2000}]]))
  })
})

describe('a signal between the temp file and the rename', () => {
  it('its handler (where the command exits) runs only after the rename: no temp file is ever seen', async () => {
    const {dir, path, cache} = learned(OLD)
    const seen: string[][] = []
    const handler = () => seen.push(readdirSync(dir))
    process.on('SIGWINCH', handler) // ignored by default: harmless if the handler were missing
    try {
      vi.mocked(fs.writeSync).mockImplementationOnce(((...args: Parameters<typeof real.writeSync>) => {
        process.kill(process.pid, 'SIGWINCH') // delivered while the temp file exists and is unwritten
        return (real.writeSync as (...a: unknown[]) => number)(...args)
      }) as typeof fs.writeSync)
      await cache.save()
      for (let i = 0; i < 100 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 10))
    } finally {
      process.off('SIGWINCH', handler)
    }
    expect(seen).toEqual([['cache.json']])
    expect(readFileSync(path, 'utf8')).not.toBe(OLD)
  })
})
