// The cache on disk (SPEC §5): read lazily at the first lookup, written after the answer.
// The file is trusted only if it is a regular file of ours that nobody else may write;
// anything else is ignored (and said). Concurrent runs share it: a writer writes a temp
// file in the same directory and renames it into place, so no reader sees a torn file; a
// lost update between two writers is possible and harmless.
import {closeSync, constants, fstatSync, mkdirSync, openSync, readSync, renameSync, rmSync, writeFileSync} from 'node:fs'
import {homedir} from 'node:os'
import {basename, dirname, isAbsolute, join} from 'node:path'

import {isFresh, MemoryCache, type CacheEntry, type Ttls} from './cache.js'
import type {AttemptRecord} from './race.js'

/** A larger file is not read at all (1000 entries take about 110 KB). */
export const MAX_FILE_BYTES = 256 * 1024
/** The newest entries kept when writing. */
export const MAX_ENTRIES = 1000
const VERSION = 1
/** A cache key as cacheKey() writes it: IPv4:port or [IPv6]:port. */
const KEY = /^(?:\d{1,3}(?:\.\d{1,3}){3}|\[[\da-fA-F:.]+\]):\d{1,5}$/

/** `$XDG_CACHE_HOME/smtpdcheck/cache.json`, else `~/.cache/smtpdcheck/cache.json`. */
export function defaultCachePath(env: NodeJS.ProcessEnv = process.env, home: () => string = homedir): string | undefined {
  const xdg = env.XDG_CACHE_HOME
  if (xdg && isAbsolute(xdg)) return join(xdg, 'smtpdcheck', 'cache.json')
  try {
    const dir = home()
    return dir && isAbsolute(dir) ? join(dir, '.cache', 'smtpdcheck', 'cache.json') : undefined
  } catch {
    return undefined
  }
}

const errorText = (error: unknown) => (error as NodeJS.ErrnoException).code ?? String((error as Error).message ?? error)

/** The file's text, or why it is not to be trusted. Never blocks (O_NONBLOCK: a FIFO is refused). */
function readTrusted(path: string): {text: string; why?: never} | {text?: never; why: string} {
  let fd: number
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK)
  } catch (error) {
    return {why: errorText(error) === 'ENOENT' ? 'missing' : `unreadable (${errorText(error)})`}
  }
  try {
    const stat = fstatSync(fd)
    const uid = process.getuid?.()
    if (!stat.isFile()) return {why: 'not a regular file'}
    if (uid !== undefined && stat.uid !== uid) return {why: `owned by uid ${stat.uid}, not ${uid}`}
    if (stat.mode & 0o022) return {why: `writable by group or others (mode ${(stat.mode & 0o777).toString(8)})`}
    const buffer = Buffer.allocUnsafe(MAX_FILE_BYTES + 1)
    let length = 0
    for (let n = 1; n > 0 && length < buffer.length; length += n) n = readSync(fd, buffer, length, buffer.length - length, null)
    if (length > MAX_FILE_BYTES) return {why: `larger than ${MAX_FILE_BYTES} bytes`}
    return {text: buffer.toString('utf8', 0, length)}
  } catch (error) {
    return {why: `unreadable (${errorText(error)})`}
  } finally {
    closeSync(fd)
  }
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)

/** The entries of a cache document, or why it is corrupt. Any bad part spoils the whole. */
export function parseCache(text: string): Map<string, CacheEntry> | string {
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch {
    return 'corrupt (not JSON)'
  }
  if (!isObject(doc) || doc.version !== VERSION || !isObject(doc.entries)) return `corrupt (not a version ${VERSION} cache)`
  const entries = new Map<string, CacheEntry>()
  for (const [key, value] of Object.entries(doc.entries)) {
    const {state, seenAt} = (isObject(value) ? value : {}) as Record<string, unknown>
    if (!KEY.test(key) || (state !== 'available' && state !== 'unavailable') || typeof seenAt !== 'number' || !Number.isFinite(seenAt)) {
      return `corrupt (bad entry ${JSON.stringify(key.slice(0, 64))})`
    }
    entries.set(key, {state, seenAt})
  }
  return entries
}

export function serializeCache(entries: ReadonlyArray<[string, CacheEntry]>): string {
  const doc = {version: VERSION, entries: Object.fromEntries(entries.map(([key, {state, seenAt}]) => [key, {state, seenAt}]))}
  return `${JSON.stringify(doc, null, 2)}\n`
}

/** Write `text` to a new 0600 temp file beside `path` and rename it into place. */
function writeAtomically(path: string, text: string): void {
  const dir = dirname(path)
  mkdirSync(dir, {recursive: true, mode: 0o700})
  const temp = join(dir, `.${basename(path)}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`)
  let created = false
  try {
    writeFileSync(temp, text, {flag: 'wx', mode: 0o600})
    created = true
    renameSync(temp, path)
  } catch (error) {
    if (created) rmSync(temp, {force: true})
    throw error
  }
}

export interface FileCacheOptions {
  /** Wall clock in ms (tests inject one). */
  readonly now?: () => number
  /** The per-server budget in ms, for timeoutEvidenceMs. */
  readonly budgetMs?: number
  /** Told why a file was ignored or not written, and what was read and written (--verbose). */
  readonly say?: (message: string) => void
}

export class FileCache extends MemoryCache {
  private loaded = false
  private learned = false
  private readonly say: (message: string) => void

  constructor(
    readonly path: string,
    ttls: Ttls,
    options: FileCacheOptions = {},
  ) {
    super(ttls, options.now, options.budgetMs)
    this.say = options.say ?? (() => {})
  }

  /** What the file holds now; an untrusted or corrupt file holds nothing. */
  private read(quiet: boolean): {entries: Map<string, CacheEntry>; text?: string} {
    const read = readTrusted(this.path)
    const entries = read.text === undefined ? read.why : parseCache(read.text)
    if (typeof entries === 'string') {
      if (!quiet) this.say(`ignored ${this.path}: ${entries}`)
      return {entries: new Map(), text: read.text}
    }
    if (!quiet) this.say(`${entries.size} entr${entries.size === 1 ? 'y' : 'ies'} in ${this.path}`)
    return {entries, text: read.text}
  }

  /** Both TTLs 0: nothing can be fresh, so the file is neither read nor written (nor emptied). */
  private get off(): boolean {
    return !(this.ttls.negative > 0 || this.ttls.positive > 0)
  }

  override lookup(address: string, port: number) {
    if (!this.loaded) {
      this.loaded = true
      if (this.off) this.say(`${this.path} not used: both TTLs are 0`)
      else for (const [key, entry] of this.read(false).entries) this.entries.set(key, entry)
    }
    return super.lookup(address, port)
  }

  override note(record: AttemptRecord): boolean {
    const taught = super.note(record)
    this.learned ||= taught
    return taught
  }

  /**
   * Merge what this run learned into the file as it is now (the newer sighting of an
   * address wins), drop what is no longer fresh under this run's TTLs, keep the newest
   * MAX_ENTRIES. Nothing is written when nothing was learned or nothing changed.
   */
  override async save(): Promise<void> {
    if (!this.learned || this.off) return
    try {
      const now = this.now()
      const disk = this.read(true)
      const merged = new Map(disk.entries)
      for (const [key, entry] of this.entries) {
        if ((merged.get(key)?.seenAt ?? -Infinity) < entry.seenAt) merged.set(key, entry)
      }
      const kept = [...merged]
        .filter(([, entry]) => isFresh(entry, now, this.ttls))
        .sort(([ka, a], [kb, b]) => b.seenAt - a.seenAt || (ka < kb ? -1 : 1))
        .slice(0, MAX_ENTRIES)
      const text = serializeCache(kept)
      if (text === (disk.text ?? serializeCache([]))) return
      writeAtomically(this.path, text)
      this.say(`wrote ${kept.length} entr${kept.length === 1 ? 'y' : 'ies'} to ${this.path}`)
    } catch (error) {
      this.say(`not written to ${this.path}: ${errorText(error)}`)
    }
  }
}
