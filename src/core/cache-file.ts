// The cache on disk (SPEC §5): read lazily at the first lookup, written after the answer.
// It lives only in a directory of ours that nobody else may change (cache-dir.ts); the file
// is opened without following a symbolic link and trusted only if it is a regular file of
// ours that nobody else may write; anything else is ignored (and said). Concurrent runs
// share it: a writer writes a temp file in the same directory and renames it into place,
// so no reader sees a torn file; a lost update between two writers is possible and harmless.
import {closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, readSync, renameSync, unlinkSync, writeSync} from 'node:fs'
import {homedir} from 'node:os'
import {basename, dirname, isAbsolute, join} from 'node:path'

import {cacheDirectory, errorText} from './cache-dir.js'
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

/**
 * The file's text, or why it is not to be trusted. A symbolic link is not followed
 * (O_NOFOLLOW); what was opened is judged on the descriptor; never blocks (O_NONBLOCK: a
 * FIFO is refused).
 */
function readTrusted(path: string): {text: string; why?: never} | {text?: never; why: string} {
  let fd: number
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW)
  } catch (error) {
    const code = errorText(error)
    return {why: code === 'ENOENT' ? 'missing' : code === 'ELOOP' ? 'a symbolic link' : `unreadable (${code})`}
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

/** A temp file's name beside `base`: `.cache.json.<pid>.<random>.tmp`. */
const tempName = (base: string) => `.${base}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`
/** Is `name` a temp file tempName(base) could have made? */
const isTempName = (base: string, name: string) => name.startsWith(`.${base}.`) && /^\d+\.[a-z0-9]+\.tmp$/.test(name.slice(base.length + 2))

/** A temp file older than this was left by a run that died (SIGKILL, power loss); a younger one may be a live run's. */
export const STALE_TEMP_MS = 60_000

/** Remove the stale temp files of ours in `dir` (see STALE_TEMP_MS); they would fill the disk one run at a time. */
function removeStaleTemps(dir: string, base: string, now: number): void {
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch {
    return
  }
  for (const name of names.filter((n) => isTempName(base, n))) {
    try {
      const stat = lstatSync(join(dir, name))
      if (stat.isFile() && now - stat.mtimeMs > STALE_TEMP_MS) unlinkSync(join(dir, name))
    } catch {
      // gone already, or not ours to remove: it is not in the way
    }
  }
}

/**
 * Write `text` to a new 0600 temp file beside `path` (O_EXCL|O_NOFOLLOW: never an existing
 * file or link) and rename it into place. On every failure after the temp file exists
 * (ENOSPC, EDQUOT, EIO, a failed close or rename) it is removed before the error is
 * thrown. Synchronous from open to rename, so no signal handler (the command exits in one)
 * runs in between; a run killed outright leaves a temp file that removeStaleTemps takes.
 */
function writeAtomically(path: string, text: string): void {
  const temp = join(dirname(path), tempName(basename(path)))
  const fd = openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600)
  let renamed = false
  try {
    try {
      const bytes = Buffer.from(text)
      for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done, bytes.length - done)
    } finally {
      closeSync(fd)
    }
    renameSync(temp, path)
    renamed = true
  } finally {
    if (!renamed) discard(temp)
  }
}

/** Remove `path` if it is there; a failure to remove it is not the caller's error. */
function discard(path: string): void {
  try {
    unlinkSync(path)
  } catch {
    // already gone (or the directory went away): nothing is left behind by us
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
  /** Why the directory was last found unfit (said once per reason, however often save is called). */
  private distrust?: string
  private readonly say: (message: string) => void

  constructor(
    readonly path: string,
    ttls: Ttls,
    options: FileCacheOptions = {},
  ) {
    super(ttls, options.now, options.budgetMs)
    this.say = options.say ?? (() => {})
  }

  /**
   * The file by its real path when its directory may be used (cache-dir.ts), made if
   * `create`; null when the directory does not exist yet; undefined when the cache is off
   * for now (said once per reason).
   */
  private locate(create: boolean): string | null | undefined {
    const dir = cacheDirectory(dirname(this.path), create)
    if (dir.real !== undefined) return join(dir.real, basename(this.path))
    if (dir.missing) return null
    if (dir.why !== this.distrust) this.say(`off: ${dir.why}`)
    this.distrust = dir.why
    return undefined
  }

  /** What `file` holds now; a missing, untrusted or corrupt file holds nothing. */
  private read(file: string | null, quiet: boolean): {entries: Map<string, CacheEntry>; text?: string} {
    const read = file === null ? {why: 'missing'} : readTrusted(file)
    const entries = read.text === undefined ? read.why : parseCache(read.text)
    if (typeof entries === 'string') {
      // A first run has no file yet: that is no fault, and the line must not read as one.
      if (!quiet) this.say(read.why === 'missing' ? `no cache yet (${this.path} does not exist)` : `ignored ${this.path}: ${entries}`)
      return {entries: new Map(), text: read.text}
    }
    if (!quiet) this.say(`${entries.size} entr${entries.size === 1 ? 'y' : 'ies'} in ${this.path}`)
    return {entries, text: read.text}
  }

  /** Both TTLs 0: nothing can be fresh, so the file is neither read nor written (nor emptied). */
  private get off(): boolean {
    return !(this.ttls.negative > 0 || this.ttls.positive > 0)
  }

  /** Read the file now if it has not been read (a long-lived process does it at start, to say what it found). */
  load(): void {
    if (this.loaded) return
    this.loaded = true
    const file = this.off ? undefined : this.locate(false)
    if (this.off) this.say(`${this.path} not used: both TTLs are 0`)
    else if (file !== undefined) for (const [key, entry] of this.read(file, false).entries) this.entries.set(key, entry)
  }

  override lookup(address: string, port: number) {
    this.load()
    return super.lookup(address, port)
  }

  override note(record: AttemptRecord): boolean {
    const taught = super.note(record)
    this.learned ||= taught
    return taught
  }

  /**
   * Merge what was learned into the file as it is now (the newer sighting of an address
   * wins), drop what is no longer fresh under these TTLs, keep the newest MAX_ENTRIES.
   * Nothing is written when nothing was learned since the last save or nothing changed.
   * Stale temp files are removed first (they may be what fills the disk). May be called
   * again and again by a long-lived process: each call checks the directory anew.
   */
  override async save(): Promise<void> {
    if (!this.learned || this.off) return
    const file = this.locate(true)
    if (!file) return
    try {
      const now = this.now()
      const disk = this.read(file, true)
      const merged = new Map(disk.entries)
      for (const [key, entry] of this.entries) {
        if ((merged.get(key)?.seenAt ?? -Infinity) < entry.seenAt) merged.set(key, entry)
      }
      const kept = [...merged]
        .filter(([, entry]) => isFresh(entry, now, this.ttls))
        .sort(([ka, a], [kb, b]) => b.seenAt - a.seenAt || (ka < kb ? -1 : 1))
        .slice(0, MAX_ENTRIES)
      const text = serializeCache(kept)
      this.learned = false
      if (text === (disk.text ?? serializeCache([]))) return
      removeStaleTemps(dirname(file), basename(file), now)
      writeAtomically(file, text)
      this.say(`wrote ${kept.length} entr${kept.length === 1 ? 'y' : 'ies'} to ${this.path}`)
    } catch (error) {
      this.learned = true
      this.say(`not written to ${this.path}: ${errorText(error)}`)
    }
  }
}
